import { afterEach, describe, expect, it } from 'vitest';
import { DtmfReceiver } from '../../media/dtmf.js';
import { linesWith } from '../support/gateway.js';
import { NodeBot } from '../support/node-bot.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// A key typed on the Talkdesk side (a `dtmf` frame, talkdesk-protocol.md §2.6) reaches the bot as RFC 4733
// telephone-events on the call's own RTP stream: decoded here by a plain UDP bot with the gateway's own receiver.
const startGateway = gatewayPerTest();
const RTP_RANGE = { RTP_PORT_MIN: '32600', RTP_PORT_MAX: '32698' };

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const dtmfFrame = (digit: string) =>
  JSON.stringify({ event: 'dtmf', streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0', sequenceNumber: '40', dtmf: { track: 'inbound_track', digit } });

async function answeredCall(dtmfPayloadType: number | null) {
  const bot = await NodeBot.start();
  cleanup.push(() => bot.close());
  const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort) });
  const td = await dialGateway(gw.app.port);
  const invite = await bot.uas.next('INVITE', 5000);
  bot.answer(invite, { dtmfPayloadType });
  await bot.uas.next('ACK');
  void td.streamAudio(Buffer.alloc(160 * 50 * 30, 0x31));
  await expect.poll(() => bot.rtp.length, { timeout: 3000 }).toBeGreaterThan(5);
  return { bot, gw, td };
}

async function hangUp({ bot, td }: Awaited<ReturnType<typeof answeredCall>>): Promise<void> {
  td.sendStop();
  const bye = await bot.uas.next('BYE', 5000);
  bot.uas.reply(bye, 200, 'OK');
  await td.closed;
}

describe('DTMF from Talkdesk to the bot', () => {
  it('a typed digit arrives as RFC 4733 on the answer’s PT, in the audio’s SSRC and sequence, and is counted', async () => {
    const call = await answeredCall(98);
    const { bot, gw, td } = call;
    td.sendRaw(dtmfFrame('5'));
    await expect.poll(() => bot.rtp.filter((p) => p.payloadType === 98).length, { timeout: 3000 }).toBe(8);
    await expect.poll(() => bot.rtp.at(-1)!.payloadType, { timeout: 1000 }).toBe(0); // audio again after it
    td.sendRaw(dtmfFrame('#'));
    await expect.poll(() => bot.rtp.filter((p) => p.payloadType === 98).length, { timeout: 3000 }).toBe(16);
    await hangUp(call);

    const heard: Array<[string, number]> = [];
    const receiver = new DtmfReceiver((digit, ms) => heard.push([digit, ms]));
    for (const p of bot.rtp.filter((x) => x.payloadType === 98)) receiver.receive(p.timestamp, p.payload);
    expect(heard).toEqual([['5', 100], ['#', 100]]);

    // one RTP stream: one SSRC, and no sequence gap where the events sit in it
    expect(new Set(bot.rtp.map((p) => p.ssrc)).size).toBe(1);
    const gaps = bot.rtp.slice(1).filter((p, i) => p.sequenceNumber !== ((bot.rtp[i]!.sequenceNumber + 1) & 0xffff));
    expect(gaps).toEqual([]);
    const first = bot.rtp.findIndex((p) => p.payloadType === 98);
    expect(bot.rtp[first]!.timestamp).toBe((bot.rtp[first - 1]!.timestamp + 160) >>> 0);

    expect(linesWith(gw.logs, 'dtmf from talkdesk → bot (RFC 4733)').map((l) => l.digit)).toEqual(['5', '#']);
    await expect.poll(() => linesWith(gw.logs, 'call ended').length).toBe(1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ digitsToBot: 2, digitsFromBot: 0, rtp: { dtmfPacketsSent: 16 } });
  });

  it('an answer without telephone-event: digits are dropped, said once, and only audio reaches the bot', async () => {
    const call = await answeredCall(null);
    const { bot, gw, td } = call;
    td.sendRaw(dtmfFrame('1'));
    td.sendRaw(dtmfFrame('2'));
    await new Promise((r) => setTimeout(r, 300));
    await hangUp(call);
    expect(bot.rtp.every((p) => p.payloadType === 0)).toBe(true);
    expect(linesWith(gw.logs, 'digit for the bot dropped: its answer has no telephone-event (logged once a call)')).toHaveLength(1);
    await expect.poll(() => linesWith(gw.logs, 'call ended').length).toBe(1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ digitsToBot: 0 });
  });
});
