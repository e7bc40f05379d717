import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DrachtioBot } from '../support/drachtio-bot.js';
import { FakeDrachtio } from '../support/fake-drachtio.js';
import { dialGateway } from '../support/talkdesk-call.js';

// The built plugin as `npm start` runs it, in its own process: SIGTERM with a live call drains, ends the call at the
// grace with stop{error} + BYE, and the process exits 0 with nothing left on either side. Built into a directory of
// its own (under node_modules, so the plugin's imports resolve) rather than dist/, which other runs may be using.
const OUT_DIR = 'node_modules/.cache/gw-drain-test';
const MAIN = `${OUT_DIR}/plugin/main.js`;

beforeAll(() => {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--outDir', OUT_DIR], { encoding: 'utf8' });
  if (!existsSync(MAIN)) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
});

interface Plugin {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port: Promise<number>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function startPlugin(env: Record<string, string>): Plugin {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      LISTEN_PORT: '0',
      SIP_PORT: '0',
      METRICS_PORT: '0',
      RTP_PORT_MIN: '26000',
      RTP_PORT_MAX: '26098',
      MARK_TIMEOUT_MS: '500',
      CLOSE_WAIT_MS: '500',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as Record<string, unknown>;
      logs.push(line);
      if (line.msg === 'talkdesk gateway listening') resolve(line.port as number);
    });
    child.once('exit', (code) => reject(new Error(`plugin exited (${code}) before listening:\n${stderr}`)));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, logs, exited, port };
}

describe('the built plugin on SIGTERM', () => {
  it('lets the live call run for SHUTDOWN_GRACE_MS, ends it with stop{error} + BYE, and exits 0 with no leg left', async () => {
    const drachtio = await FakeDrachtio.start();
    try {
      const plugin = startPlugin({
        SIP_BACKEND: 'drachtio',
        DRACHTIO_PORT: String(drachtio.port),
        DRACHTIO_SECRET: drachtio.secret,
        SHUTDOWN_GRACE_MS: '1000',
      });
      const port = await plugin.port;
      const td = await dialGateway(port);
      const bot = await DrachtioBot.answerNext(drachtio);
      try {
        await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);

        const t0 = performance.now();
        plugin.child.kill('SIGTERM');
        // draining: the instance takes no new call meanwhile
        await expect.poll(async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(503);
        await expect(dialGateway(port)).rejects.toMatchObject({ status: 503 });

        const bye = await drachtio.next('BYE', 5_000);
        expect(performance.now() - t0).toBeGreaterThanOrEqual(990);
        expect(bye.sip.get('X-Reason')).toBe('shutdown');
        drachtio.respond(bye, 200, 'OK');
        expect((await td.waitForStop(2_000)).stop.stop).toMatchObject({ command: 'error' });
        await td.closed;

        expect(await plugin.exited).toEqual({ code: 0, signal: null });
        expect(drachtio.dialogCount).toBe(0);
        expect(drachtio.count('BYE')).toBe(1);
        const msgs = plugin.logs.map((l) => l.msg);
        expect(plugin.logs.find((l) => l.msg === 'call ended')).toMatchObject({ outcome: 'error', cause: 'shutdown' });
        expect(msgs.indexOf('shutting down: no new calls, live calls get the grace period')).toBeLessThan(msgs.indexOf('call ended'));
        expect(msgs).toContain('shut down cleanly');
      } finally {
        bot.close();
      }
    } finally {
      await drachtio.close();
    }
  });
});
