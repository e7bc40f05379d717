import { afterEach, describe, expect, it } from 'vitest';
import { mixMulaw } from '../../media/mix.js';
import { FakeTalkdesk, makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { linesWith } from '../support/gateway.js';
import { scrape } from '../support/metrics-scrape.js';
import { NodeBot, offeredPort } from '../support/node-bot.js';
import { dialGateway, EXAMPLE_BOT } from '../support/talkdesk-call.js';
import type { Received } from '../unit/plugin/sip/fake-uas.js';
import { gatewayPerTest } from './gateway-per-test.js';

// agentassist=true, Talkdesk's unidirectional stream (talkdesk-protocol.md §2.2, §5): both tracks reach the bot,
// on two calls or mixed into one, and nothing at all goes back into the socket. The bot is a scripted Node UAS.
const startGateway = gatewayPerTest();
const RTP_RANGE = { RTP_PORT_MIN: '27000', RTP_PORT_MAX: '27098' };

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const CALLER = 0x11;
const AGENT = 0x22;
/** 20 s of each track: longer than any test, which ends the call first */
const track = (fill: number) => Buffer.alloc(160 * 50 * 20, fill);

/** Talkdesk's agent-assist stream, as Kore's flow opens it: agentassist=true, both tracks in start. */
async function openAssistStream(port: number): Promise<FakeTalkdesk> {
  const td = await FakeTalkdesk.connect(
    talkdeskUrl({
      port,
      sipuri: '+17345551234',
      token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret),
      botId: EXAMPLE_BOT.botId,
      accountId: '0123456789abcdef01234567',
      agentassist: true,
    }),
  );
  td.sendConnected();
  td.sendStart({
    streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
    accountSid: 'td-account-1',
    callSid: 'CA-assist-1',
    interactionId: 'interaction-7',
    tracks: ['inbound', 'outbound'],
  });
  void td.streamAudio(track(CALLER), { track: 'inbound' });
  void td.streamAudio(track(AGENT), { track: 'outbound' });
  return td;
}

async function setup(mode: 'two' | 'one') {
  const bot = await NodeBot.start();
  cleanup.push(() => bot.close());
  const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort), AGENT_ASSIST_CALLS: mode });
  const td = await openAssistStream(gw.app.port);
  return { bot, gw, td };
}

/** The payload bytes the bot got from one gateway RTP port, audio only. */
function audioFrom(bot: NodeBot, invite: Received): Buffer[] {
  const port = offeredPort(invite);
  return bot.rtp.filter((p) => p.from === port && p.payloadType === 0).map((p) => Buffer.from(p.payload));
}

const filledWith = (frame: Buffer, byte: number) => frame.every((b) => b === byte);

describe('agentassist=true: listen-only, both tracks to the bot', () => {
  it('two: one INVITE per track saying which; each leg carries its track; the bot’s BYE ends both; nothing goes back', async () => {
    const { bot, gw, td } = await setup('two');
    const invites = [await bot.uas.next('INVITE', 5000), await bot.uas.next('INVITE', 5000)];
    const byTrack = Object.fromEntries(invites.map((i) => [i.message.sip.get('x-talkdesk-track'), i]));
    expect(Object.keys(byTrack).sort()).toEqual(['inbound', 'outbound']);
    expect(new Set(invites.map((i) => i.message.callId)).size).toBe(2);
    // both carry the Talkdesk ids, as the bidirectional call's INVITE does
    expect(invites.map((i) => i.message.sip.get('x-talkdesk-call-sid'))).toEqual(['CA-assist-1', 'CA-assist-1']);
    for (const invite of invites) bot.answer(invite);
    await bot.uas.next('ACK');
    await bot.uas.next('ACK');
    // the bot talks on both legs: none of it may reach Talkdesk
    void bot.sendAudio(offeredPort(byTrack.inbound!), 25, 0x55);
    void bot.sendAudio(offeredPort(byTrack.outbound!), 25, 0x66);
    await expect.poll(() => audioFrom(bot, byTrack.outbound!).filter((f) => filledWith(f, AGENT)).length, { timeout: 5000 }).toBeGreaterThan(20);

    const inbound = audioFrom(bot, byTrack.inbound!);
    const outbound = audioFrom(bot, byTrack.outbound!);
    expect(inbound.filter((f) => filledWith(f, CALLER)).length).toBeGreaterThan(20);
    expect(inbound.some((f) => f.includes(AGENT))).toBe(false);
    expect(outbound.some((f) => f.includes(CALLER))).toBe(false);

    // the bot hangs up the caller's leg: the agent's leg gets its BYE, Talkdesk's socket a plain close
    bot.uas.requestInDialog(byTrack.inbound!, 'BYE');
    const bye = await bot.uas.next('BYE', 5000);
    expect(bye.message.callId).toBe(byTrack.outbound!.message.callId);
    expect(bye.message.sip.get('x-reason')).toBe('bot-bye');
    bot.uas.reply(bye, 200, 'OK');
    expect((await td.closed).code).toBe(1000);
    expect(td.received).toEqual([]);

    await expect.poll(() => linesWith(gw.logs, 'call ended').length, { timeout: 5000 }).toBe(1);
    const ended = linesWith(gw.logs, 'call ended')[0]!;
    expect(ended).toMatchObject({ outcome: 'ok', cause: 'bot-bye', talkdesk: { framesOut: 0 }, agentAssist: { mode: 'two' } });
    const legs = (ended.agentAssist as { legs: Array<{ track: string; rtp: { packetsReceived: number } }> }).legs;
    expect(legs.map((l) => l.track)).toEqual(['inbound', 'outbound']);
    expect(legs.every((l) => l.rtp.packetsReceived > 0)).toBe(true); // it did talk: and all of it was dropped
    // and /metrics counts both legs' RTP, as it does the bidirectional call's
    const m = await scrape(gw);
    const legSum = (key: 'packetsSent' | 'packetsReceived'): number =>
      (ended.agentAssist as { legs: Array<{ rtp: Record<string, number> }> }).legs.reduce((n, l) => n + l.rtp[key]!, 0);
    expect(m.value('talkdesk_gw_rtp_packets_total', { direction: 'to_bot' })).toBe(legSum('packetsSent'));
    expect(m.value('talkdesk_gw_rtp_packets_total', { direction: 'from_bot' })).toBe(legSum('packetsReceived'));
    expect(legSum('packetsSent')).toBeGreaterThan(40);
  });

  it('one: a single INVITE (X-Talkdesk-Track: mixed) carrying both tracks mixed; Talkdesk’s stop ends it silently', async () => {
    const { bot, gw, td } = await setup('one');
    const invite = await bot.uas.next('INVITE', 5000);
    expect(invite.message.sip.get('x-talkdesk-track')).toBe('mixed');
    bot.answer(invite);
    await bot.uas.next('ACK');
    void bot.sendAudio(offeredPort(invite), 25, 0x55);

    const mixed = Buffer.alloc(1);
    mixMulaw(Buffer.of(CALLER), Buffer.of(AGENT), mixed);
    expect(mixed[0]).not.toBe(CALLER);
    expect(mixed[0]).not.toBe(AGENT);
    await expect.poll(() => audioFrom(bot, invite).filter((f) => filledWith(f, mixed[0]!)).length, { timeout: 5000 }).toBeGreaterThan(30);
    // both tracks arrive together, so every frame the bot got is the mix (or silence before the first)
    const frames = audioFrom(bot, invite);
    expect(frames.filter((f) => !filledWith(f, mixed[0]!) && !filledWith(f, 0xff))).toEqual([]);

    // it is still the caller's leg: a digit typed on the Talkdesk side goes to it
    td.sendRaw(JSON.stringify({ event: 'dtmf', streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0', dtmf: { digit: '9' } }));
    await expect.poll(() => bot.rtp.filter((p) => p.payloadType === 101).length, { timeout: 3000 }).toBe(8);

    td.sendStop();
    const bye = await bot.uas.next('BYE', 5000);
    expect(bye.message.sip.get('x-reason')).toBe('talkdesk-stop');
    bot.uas.reply(bye, 200, 'OK');
    await td.closed;
    expect(td.received).toEqual([]);
    await expect.poll(() => linesWith(gw.logs, 'call ended').length, { timeout: 5000 }).toBe(1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({
      outcome: 'caller-hangup',
      digitsToBot: 1,
      agentAssist: { mode: 'one', legs: [{ track: 'mixed' }] },
    });
  });

  it('two: a leg the bot rejects ends the call at once, the other still ringing is cancelled; Talkdesk gets nothing', async () => {
    const { bot, gw, td } = await setup('two');
    const invites = [await bot.uas.next('INVITE', 5000), await bot.uas.next('INVITE', 5000)];
    bot.uas.reply(invites[0]!, 180, 'Ringing');
    bot.uas.reply(invites[1]!, 486, 'Busy Here');
    const cancel = await bot.uas.next('CANCEL', 3000); // long before INVITE_TIMEOUT_MS
    expect(cancel.message.callId).toBe(invites[0]!.message.callId);
    bot.uas.reply(cancel, 200, 'OK');
    bot.uas.reply(invites[0]!, 487, 'Request Terminated');
    await td.closed;
    expect(td.received).toEqual([]);
    await expect.poll(() => linesWith(gw.logs, 'call ended').length, { timeout: 5000 }).toBe(1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ outcome: 'error' });
  });

  it('two: a leg the bot rejects after the other answered: that one is hung up, Talkdesk still gets nothing', async () => {
    const { bot, gw, td } = await setup('two');
    const invites = [await bot.uas.next('INVITE', 5000), await bot.uas.next('INVITE', 5000)];
    bot.answer(invites[0]!);
    await bot.uas.next('ACK');
    bot.uas.reply(invites[1]!, 486, 'Busy Here');
    const bye = await bot.uas.next('BYE', 5000);
    expect(bye.message.callId).toBe(invites[0]!.message.callId);
    bot.uas.reply(bye, 200, 'OK');
    await td.closed;
    expect(td.received).toEqual([]);
    await expect.poll(() => linesWith(gw.logs, 'call ended').length, { timeout: 5000 }).toBe(1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ outcome: 'error' });
  });
});

describe('agentassist=false keeps dropping the outbound track', () => {
  it('outbound frames on the bidirectional stream never reach the bot', async () => {
    const bot = await NodeBot.start();
    cleanup.push(() => bot.close());
    const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort) });
    const td = await dialGateway(gw.app.port);
    const invite = await bot.uas.next('INVITE', 5000);
    expect(invite.message.sip.get('x-talkdesk-track')).toBeUndefined();
    bot.answer(invite);
    await bot.uas.next('ACK');
    void td.streamAudio(track(CALLER), { track: 'inbound' });
    void td.streamAudio(track(AGENT), { track: 'outbound' });
    await expect.poll(() => audioFrom(bot, invite).filter((f) => filledWith(f, CALLER)).length, { timeout: 5000 }).toBeGreaterThan(25);
    expect(audioFrom(bot, invite).some((f) => f.includes(AGENT))).toBe(false);
    td.sendStop();
    const bye = await bot.uas.next('BYE', 5000);
    bot.uas.reply(bye, 200, 'OK');
    await td.closed;
  });
});
