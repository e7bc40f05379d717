import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DrachtioBot } from '../support/drachtio-bot.js';
import { BOT_PORT, FakeDrachtio } from '../support/fake-drachtio.js';
import { buildPlugin, killPlugins, spawnPlugin } from '../support/plugin-process.js';
import { dialGateway } from '../support/talkdesk-call.js';

// The built plugin as `npm start` runs it, in its own process: SIGTERM with a live call drains, ends the call at the
// grace with stop{error} + BYE, and the process exits 0 with nothing left on either side.
let main: string;
beforeAll(() => {
  main = buildPlugin('node_modules/.cache/gw-drain-test');
});
afterEach(killPlugins);

describe('the built plugin on SIGTERM', () => {
  it('lets the live call run for SHUTDOWN_GRACE_MS, ends it with stop{error} + BYE, and exits 0 with no leg left', async () => {
    const drachtio = await FakeDrachtio.start();
    try {
      const plugin = spawnPlugin(main, {
        RTP_PORT_MIN: '26000',
        RTP_PORT_MAX: '26098',
        SIP_BACKEND: 'drachtio',
        CCAI_SIP_PORT: BOT_PORT,
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
