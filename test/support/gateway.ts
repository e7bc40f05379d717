import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '../../config/load.js';
import { startApp, type RunningApp } from '../../plugin/app.js';
import { botPorts } from './ports.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface Gateway {
  app: RunningApp;
  /** every log line the gateway wrote, parsed: tests assert on what an operator would see */
  logs: LogLine[];
  stop(): Promise<void>;
}


/**
 * The real plugin, started in-process from the shipped jambonz-app.json with test overrides given the way an
 * operator gives them: as environment variables.
 */
export async function startGateway(
  env: Record<string, string> = {},
  onLog?: (line: LogLine) => void,
): Promise<Gateway> {
  const loaded = loadConfig({
    file: 'jambonz-app.json',
    env: {
      LISTEN_PORT: '0',
      SIP_PORT: '0',
      // every gateway of a test run gets its own metrics port: the default 9464 would clash between test processes
      METRICS_PORT: '0',
      // the bot in slot 0; the gateway's own SIP and HTTP ports are picked by the OS
      // nothing listens there (test/support/ports.ts): a test whose calls must reach a bot names its port
      CCAI_SIP_PORT: String(botPorts(19).sipPort),
      RTP_PORT_MIN: '21000',
      RTP_PORT_MAX: '21098',
      MARK_TIMEOUT_MS: '500',
      CLOSE_WAIT_MS: '500',
      ...env,
    },
  });
  if (!loaded.ok) throw new Error(`test config refused:\n${loaded.errors.join('\n')}`);
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        logs.push(line);
        onLog?.(line);
      }
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const app = await startApp(loaded.config, log, loaded.appJson);
  return { app, logs, stop: () => app.stop() };
}

/** The log lines of one message, for assertions and for printing when a test fails. */
export function linesWith(logs: LogLine[], msg: string): LogLine[] {
  return logs.filter((line) => line.msg === msg);
}
