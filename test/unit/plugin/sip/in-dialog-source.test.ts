import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest, SipLeg } from '../../../../plugin/sip/backend.js';
import type { EmbeddedSipBackendOptions } from '../../../../plugin/sip/embedded/backend.js';
import type { SipTimers } from '../../../../plugin/sip/embedded/timers.js';
import { delegateMock, loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, FakeUas, testLog, type Received } from './fake-uas.js';
import { StreamPeer } from './stream-peer.js';

/**
 * Issue 13, item 1: a dialog is found by Call-ID and tags, which anyone on the path of UDP or TCP signalling can read.
 * A stranger (here a socket on 127.0.0.2; the bot and the backend are on 127.0.0.1) who copies them must not end,
 * escalate, transfer or move the call, nor push the dialog's CSeq out of the bot's reach.
 */

/** short RFC timers: T1 10 ms makes Timer H 640 ms */
const FAST: Partial<SipTimers> = { T1: 10, T2: 40, T4: 40, D: 80 };
const ATTACKER_SDP = sdpOffer(40000, 'attacker').replace(/127\.0\.0\.1/g, '127.0.0.2');
const ESCALATE_TO_ATTACKER = ['X-Escalate: true', 'X-Escalation-Data: {"queue":"attacker-queue"}'];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function answeredCall(overrides: Partial<EmbeddedSipBackendOptions> = {}) {
  const backend = loopbackBackend({ timers: FAST, ...overrides });
  await backend.start();
  const bot = await FakeUas.start();
  const stranger = await FakeUas.start('127.0.0.2');
  cleanups.push(
    () => backend.stop(),
    () => bot.close(),
    () => stranger.close(),
  );
  const delegate = delegateMock();
  const request: InviteRequest = { requestUri: bot.uri, fromUser: 'talkdesk', headers: {}, sdp: sdpOffer(20000), log: testLog, delegate };
  const outgoing = backend.invite(request);
  const invite = await bot.next('INVITE');
  bot.reply(invite, 200, 'OK', { body: BOT_SDP });
  await bot.next('ACK');
  const leg: SipLeg = await outgoing.answered;
  /** the stranger's copy of a request in the dialog, posing as the bot (its tag, our tag, the Call-ID) */
  const forge = (method: string, opts: { headers?: string[]; body?: string; cseq?: number } = {}): string =>
    stranger.requestInDialog(invite, method, { ...opts, fromTag: bot.tag });
  return { backend, bot, stranger, delegate, leg, invite, forge };
}

const settle = (ms = 100) => new Promise((r) => setTimeout(r, ms));

describe('embedded backend: in-dialog requests from a stranger', () => {
  it('a BYE with X-Escalation-Data from another address gets 403, is not reported, and the bot can still BYE', async () => {
    const { bot, stranger, delegate, forge, invite } = await answeredCall();
    forge('BYE', { headers: ESCALATE_TO_ATTACKER });
    expect((await stranger.next('403')).message.cseq.method).toBe('BYE');
    await settle();
    expect(delegate.onBye).not.toHaveBeenCalled();
    bot.requestInDialog(invite, 'BYE', { headers: ['X-Escalation-Data: {"queue":"billing"}'] });
    expect((await bot.next('200')).message.cseq.method).toBe('BYE');
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
    expect(delegate.onBye.mock.calls[0]![0].get('x-escalation-data')).toBe('{"queue":"billing"}');
  });

  it('a REFER from another address gets 403 and is not reported; no NOTIFY goes out', async () => {
    const { bot, stranger, delegate, forge, leg } = await answeredCall();
    forge('REFER', { headers: ['Refer-To: <sip:attacker-queue@203.0.113.9>', ...ESCALATE_TO_ATTACKER] });
    expect((await stranger.next('403')).message.cseq.method).toBe('REFER');
    await settle();
    expect(delegate.onRefer).not.toHaveBeenCalled();
    expect(stranger.count('NOTIFY') + bot.count('NOTIFY')).toBe(0);
    await Promise.all([leg.hangup(), bot.next('BYE').then((bye) => bot.reply(bye, 200, 'OK'))]);
  });

  it('a re-INVITE with its own SDP from another address gets one 403 (no retransmissions) and moves nothing', async () => {
    const { stranger, delegate, forge } = await answeredCall();
    forge('INVITE', { body: ATTACKER_SDP });
    expect((await stranger.next('403')).message.cseq.method).toBe('INVITE');
    await settle(800); // past Timer H: a stateful 403 would have been re-sent on Timer G meanwhile
    expect(stranger.count('403')).toBe(1);
    expect(delegate.onRemoteSdp).not.toHaveBeenCalled();
  });

  it('an ACK with SDP from another address is dropped: no media moves', async () => {
    const { delegate, forge } = await answeredCall();
    forge('ACK', { body: ATTACKER_SDP, cseq: 1 });
    await settle();
    expect(delegate.onRemoteSdp).not.toHaveBeenCalled();
  });

  it("an OPTIONS with CSeq 2147483647 from another address gets 403 and does not make the bot's BYE out of order", async () => {
    const { bot, stranger, delegate, forge, invite } = await answeredCall();
    forge('OPTIONS', { cseq: 2147483647 });
    expect((await stranger.next('403')).message.cseq.method).toBe('OPTIONS');
    bot.requestInDialog(invite, 'BYE', { headers: ['X-Escalation-Data: {"queue":"billing"}'] });
    expect((await bot.next('200')).message.cseq.method).toBe('BYE');
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
  });

  it('a request from another port of the bot host is the bot: a UA may send from any port of its own (§18.2.1)', async () => {
    const { delegate, invite, bot } = await answeredCall();
    const sameHost = await FakeUas.start('127.0.0.1');
    cleanups.push(() => sameHost.close());
    sameHost.requestInDialog(invite, 'BYE', { fromTag: bot.tag });
    expect((await sameHost.next('200')).message.cseq.method).toBe('BYE');
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
  });

  it('an address listed in CCAI_SOURCE_ADDRESSES (here as a range) may act in the dialog', async () => {
    const { stranger, delegate, forge } = await answeredCall({ ccaiSourceAddresses: ['127.0.0.2/32'] });
    forge('BYE', { headers: ['X-Escalation-Data: {"queue":"billing"}'] });
    expect((await stranger.next('200')).message.cseq.method).toBe('BYE');
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
  });
});

describe("embedded backend: the dialog's peer is every host the dialog named", () => {
  it("the 2xx's Contact host may act in the dialog, another host still may not", async () => {
    const backend = loopbackBackend({ timers: FAST });
    await backend.start();
    const bot = await FakeUas.start();
    const media = await FakeUas.start('127.0.0.3'); // the bot's Contact names another node of CCAI
    const stranger = await FakeUas.start('127.0.0.2');
    cleanups.push(
      () => backend.stop(),
      () => bot.close(),
      () => media.close(),
      () => stranger.close(),
    );
    const delegate = delegateMock();
    const outgoing = backend.invite({ requestUri: bot.uri, fromUser: 'talkdesk', headers: {}, sdp: sdpOffer(20000), log: testLog, delegate });
    const invite: Received = await bot.next('INVITE');
    answerWithContact(bot, invite, `<sip:bot@127.0.0.3:${media.port};transport=udp>`);
    await media.next('ACK'); // the ACK goes to the Contact (§13.2.2.4)
    await outgoing.answered;
    stranger.requestInDialog(invite, 'BYE', { fromTag: bot.tag });
    await stranger.next('403');
    media.requestInDialog(invite, 'BYE', { fromTag: bot.tag });
    await media.next('200');
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
  });
});

describe('embedded backend over TCP: only connections to or from the peer count', () => {
  it("a BYE on a stranger's connection gets 403; the bot's BYE on a new connection of its own is heard", async () => {
    const backend = loopbackBackend({ transport: 'tcp', timers: FAST });
    await backend.start();
    const bot = await StreamPeer.start();
    cleanups.push(
      () => backend.stop(),
      () => bot.close(),
    );
    const delegate = delegateMock();
    const outgoing = backend.invite({
      requestUri: `sip:+17345551234@127.0.0.1:${bot.port};transport=tcp`,
      fromUser: 'talkdesk',
      headers: {},
      sdp: sdpOffer(20000),
      log: testLog,
      delegate,
    });
    const invite = await bot.next('INVITE');
    bot.reply(invite, 200, 'OK', BOT_SDP);
    await outgoing.answered;
    await bot.next('ACK');

    const fromStranger = await bot.connectTo(backend.localPort, (port) => [
      tcpConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }),
      'connect',
    ]);
    bot.bye(invite, fromStranger);
    const refused = await bot.next('403');
    expect(refused.socket).toBe(fromStranger);
    await new Promise((r) => setTimeout(r, 100));
    expect(delegate.onBye).not.toHaveBeenCalled();

    const fromBot = await bot.connectTo(backend.localPort);
    bot.bye(invite, fromBot);
    expect((await bot.next('200')).socket).toBe(fromBot);
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
  });
});

/** a 200 to the INVITE whose Contact is `contact` (FakeUas.reply always names itself) */
function answerWithContact(bot: FakeUas, invite: Received, contact: string): void {
  const { sip } = invite.message;
  const raw = [
    'SIP/2.0 200 OK',
    `Via: ${sip.get('via')!}`,
    `From: ${sip.get('from')!}`,
    `To: ${sip.get('to')!};tag=${bot.tag}`,
    `Call-ID: ${invite.message.callId}`,
    `CSeq: ${sip.get('cseq')!}`,
    `Contact: ${contact}`,
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(BOT_SDP)}`,
    '',
    BOT_SDP,
  ].join('\r\n');
  bot.send(raw, invite.message.via.port!);
}
