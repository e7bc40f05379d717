import pino from 'pino';
import { loadConfig } from '../../config/load.js';
import type { AuthFailureCause } from '../../plugin/talkdesk/auth.js';
import { createTalkdeskServer, type TalkdeskServer, type TalkdeskServerOptions } from '../../plugin/talkdesk/server.js';

/** What a counting server saw: its port, the streams it accepted, the causes of the upgrades auth refused. */
export interface CountingServer {
  server: TalkdeskServer;
  port: number;
  streams: number;
  failures: AuthFailureCause[];
}

/**
 * The Talkdesk HTTP/WebSocket front alone, configured from jambonz-app.json with `env` over it, and no calls behind
 * it: every accepted stream is counted and closed at once. The caller closes `server`.
 */
export async function startCountingServer(env: Record<string, string>, options: TalkdeskServerOptions = {}): Promise<CountingServer> {
  const loaded = loadConfig({ file: 'jambonz-app.json', env: { LISTEN_PORT: '0', METRICS_PORT: '0', ...env } });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const state = { streams: 0, failures: [] as AuthFailureCause[] };
  const server = createTalkdeskServer(
    loaded.config,
    pino({ level: 'silent' }),
    (ws) => {
      state.streams++;
      ws.close(1000);
    },
    { ...options, onAuthFailure: (cause) => state.failures.push(cause) },
  );
  const port = await server.listen();
  return Object.assign(state, { server, port });
}
