import { afterEach, describe, expect, it } from 'vitest';
import { linesWith, type Gateway } from '../support/gateway.js';
import { NodeBot, offeredPort } from '../support/node-bot.js';
import { dialGateway } from '../support/talkdesk-call.js';
import type { FakeTalkdesk } from '../support/fake-talkdesk.js';
import type { Received } from '../unit/plugin/sip/fake-uas.js';
import { gatewayPerTest } from './gateway-per-test.js';

// The call's watchdog ends a call that went quiet on either side, or ran too long, cleanly on both legs: stop{error}
// to Talkdesk, BYE with X-Reason to the bot. The bot is a scripted Node UAS (it can stop sending RTP mid-call, which
// a sipp pcap cannot be told to do); the gateway's RTP range is this file's own.
const startGateway = gatewayPerTest();
const RTP_RANGE = { RTP_PORT_MIN: '32800', RTP_PORT_MAX: '32898' };

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A 60 s stream of caller audio that the test never lets finish: Talkdesk is alive throughout. */
const LONG_AUDIO = Buffer.alloc(160 * 50 * 60, 0x31);

async function answeredCall(env: Record<string, string>): Promise<{ bot: NodeBot; gw: Gateway; td: FakeTalkdesk; invite: Received }> {
  const bot = await NodeBot.start();
  cleanup.push(() => bot.close());
  const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort), ...env });
  const td = await dialGateway(gw.app.port);
  const invite = await bot.uas.next('INVITE', 5000);
  bot.answer(invite);
  await bot.uas.next('ACK');
  return { bot, gw, td, invite };
}

/** The end as both sides see it: Talkdesk's stop, the bot's BYE (answered), the summary line. */
async function expectCleanEnd({ bot, gw, td }: { bot: NodeBot; gw: Gateway; td: FakeTalkdesk }, cause: string) {
  const { stop, at: stopAt } = await td.waitForStop(10_000);
  expect(stop.stop).toMatchObject({ command: 'error', callSid: 'CA-test-call-1' });
  const bye = await bot.uas.next('BYE', 5000);
  expect(bye.message.sip.get('x-reason')).toBe(cause);
  bot.uas.reply(bye, 200, 'OK');
  await td.closed;
  await expect.poll(() => linesWith(gw.logs, 'call ended').length, { timeout: 5000 }).toBe(1);
  expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ outcome: 'error', cause });
  return stopAt;
}

describe('media timeouts and the longest call', () => {
  it('the bot stops sending RTP: media-timeout after RTP_TIMEOUT_MS, stop{error} + BYE, while Talkdesk still streams', async () => {
    const call = await answeredCall({ RTP_TIMEOUT_MS: '1500', TALKDESK_TIMEOUT_MS: '60000' });
    void call.td.streamAudio(LONG_AUDIO);
    await call.bot.sendAudio(offeredPort(call.invite), 25); // half a second of TTS, then silence
    const lastPacketAt = performance.now();
    const stopAt = await expectCleanEnd(call, 'media-timeout');
    // never early; at most one sweep (1 s) late, plus scheduling slack
    expect(stopAt - lastPacketAt).toBeGreaterThanOrEqual(1500 - 50);
    expect(stopAt - lastPacketAt).toBeLessThan(1500 + 1000 + 500);
    expect(linesWith(call.gw.logs, 'call ended')[0]!.detail).toBe('no RTP from the bot for 1500 ms');
  });

  it('Talkdesk goes silent (socket open, no frame): talkdesk-timeout after TALKDESK_TIMEOUT_MS, stop{error} + BYE', async () => {
    const call = await answeredCall({ TALKDESK_TIMEOUT_MS: '1500', RTP_TIMEOUT_MS: '60000' });
    await call.td.streamAudio(Buffer.alloc(160 * 10, 0x31)); // 200 ms of caller audio, then nothing
    const lastFrameAt = performance.now();
    void call.bot.sendAudio(offeredPort(call.invite), 50 * 60); // the bot keeps talking
    const stopAt = await expectCleanEnd(call, 'talkdesk-timeout');
    expect(stopAt - lastFrameAt).toBeGreaterThanOrEqual(1500 - 50);
    expect(stopAt - lastFrameAt).toBeLessThan(1500 + 1000 + 500);
  });

  it('a call longer than MAX_CALL_MS ends with max-duration, however busy both sides are', async () => {
    const t0 = performance.now();
    const call = await answeredCall({ MAX_CALL_MS: '1000', RTP_TIMEOUT_MS: '60000', TALKDESK_TIMEOUT_MS: '60000' });
    void call.td.streamAudio(LONG_AUDIO);
    void call.bot.sendAudio(offeredPort(call.invite), 50 * 60);
    const stopAt = await expectCleanEnd(call, 'max-duration');
    expect(stopAt - t0).toBeGreaterThanOrEqual(1000);
    expect(stopAt - t0).toBeLessThan(1000 + 1000 + 500);
  });

  it('a bot that answers recvonly owes no RTP: its silence does not end the call', async () => {
    const bot = await NodeBot.start();
    cleanup.push(() => bot.close());
    const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort), RTP_TIMEOUT_MS: '1000' });
    const td = await dialGateway(gw.app.port);
    const invite = await bot.uas.next('INVITE', 5000);
    bot.answer(invite, { direction: 'recvonly' });
    await bot.uas.next('ACK');
    const answeredAt = performance.now();
    void td.streamAudio(LONG_AUDIO);
    // a media timeout would end the call at the first sweep past RTP_TIMEOUT_MS; the sweep after it would see it ended
    const { watchdog } = gw.app;
    await expect.poll(() => watchdog.lastSweepAt, { timeout: 5_000, interval: 20 }).toBeGreaterThan(answeredAt + 1000);
    const pastTheLimit = watchdog.lastSweepAt;
    await expect.poll(() => watchdog.lastSweepAt, { timeout: 5_000, interval: 20 }).toBeGreaterThan(pastTheLimit);
    expect(td.received.filter((r) => r.msg.event === 'stop')).toEqual([]);
    expect(gw.app.registry.size).toBe(1);
    expect(bot.rtp.length).toBeGreaterThan(100); // our audio still flows to it
    td.sendStop();
    const bye = await bot.uas.next('BYE', 5000);
    expect(bye.message.sip.get('x-reason')).toBe('talkdesk-stop');
    bot.uas.reply(bye, 200, 'OK');
    await td.closed;
  });
});
