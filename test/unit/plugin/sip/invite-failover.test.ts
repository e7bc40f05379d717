import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest } from '../../../../plugin/sip/backend.js';
import { TargetResolver } from '../../../../plugin/sip/embedded/target-resolver.js';
import { startDnsServer } from '../../../support/dns-server.js';
import { failureOf, loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, FakeUas, testLog, type Received } from './fake-uas.js';
import { StreamPeer } from './stream-peer.js';

// RFC 3263 §4.3 in the embedded UAC: `ccai.test` has two SRV targets, two fake UASes; the first fails in some way and
// the INVITE must go to the second in a new transaction of the same dialog-to-be, or must not.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** T1 = 10 ms: Timer B after 640 ms */
const TIMERS = { T1: 10, T2: 40, T4: 40, D: 80 };

/** A DNS server publishing `srvName` with a first (priority 10) and a second (priority 20) target on loopback. */
async function dnsWithTargets(srvName: string, firstPort: number, secondPort: number): Promise<TargetResolver> {
  const dns = await startDnsServer({
    [srvName]: [
      { type: 'SRV', ttl: 60, data: { priority: 10, weight: 0, port: firstPort, target: 'first.ccai.test' } },
      { type: 'SRV', ttl: 60, data: { priority: 20, weight: 0, port: secondPort, target: 'second.ccai.test' } },
    ],
    'first.ccai.test': [{ type: 'A', ttl: 60, data: '127.0.0.1' }],
    'second.ccai.test': [{ type: 'A', ttl: 60, data: '127.0.0.1' }],
  });
  cleanups.push(() => dns.close());
  return new TargetResolver({ servers: [dns.address] });
}

function inviteTo(transport: 'udp' | 'tcp'): InviteRequest {
  return {
    requestUri: `sip:+17345551234@ccai.test;transport=${transport}`,
    fromUser: 'talkdesk',
    headers: {},
    sdp: sdpOffer(20000),
    log: testLog,
    delegate: { onBye: vi.fn(), onRemoteSdp: vi.fn(), onRefer: vi.fn(), onEnded: vi.fn(), onProgress: vi.fn() },
  };
}

async function setup(targetTimeoutMs: number) {
  const first = await FakeUas.start();
  const second = await FakeUas.start();
  const targets = await dnsWithTargets('_sip._udp.ccai.test', first.port, second.port);
  const backend = loopbackBackend({ timers: TIMERS, targetTimeoutMs, targets });
  await backend.start();
  cleanups.push(() => backend.stop(), () => first.close(), () => second.close());
  const request = inviteTo('udp');
  return { first, second, outgoing: backend.invite(request), delegate: request.delegate };
}

function expectNextTransaction(before: Received, after: Received): void {
  expect(after.message.callId).toBe(before.message.callId);
  expect(after.message.fromTag).toBe(before.message.fromTag);
  expect(after.message.cseq).toEqual({ seq: before.message.cseq.seq + 1, method: 'INVITE' });
  expect(after.message.branch).not.toBe(before.message.branch);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('EmbeddedSipBackend: an INVITE to a name with several SRV targets (RFC 3263 §4.3)', () => {
  it('the first target silent: after CCAI_TARGET_TIMEOUT_MS its retransmissions stop and the INVITE goes to the second', async () => {
    const s = await setup(300);
    const toFirst = await s.first.next('INVITE');
    const toSecond = await s.second.next('INVITE', 1_000);
    expect(toSecond.at - toFirst.at).toBeGreaterThanOrEqual(290);
    expectNextTransaction(toFirst, toSecond);
    const sentToFirst = s.first.count('INVITE');
    await sleep(200);
    expect(s.first.count('INVITE')).toBe(sentToFirst); // abandoned: no more retransmissions
    s.second.reply(toSecond, 200, 'OK', { body: BOT_SDP });
    await s.second.next('ACK');
    expect((await s.outgoing.answered).remoteSdp).toBe(BOT_SDP);
  });

  it('the first target answered 1xx: it is never left on time, and its 200 is the call', async () => {
    const s = await setup(100);
    const invite = await s.first.next('INVITE');
    s.first.reply(invite, 180, 'Ringing');
    await sleep(400);
    expect(s.second.count('INVITE')).toBe(0);
    expect(s.delegate.onProgress).toHaveBeenCalledWith(180);
    s.first.reply(invite, 200, 'OK', { body: BOT_SDP });
    await s.first.next('ACK');
    expect((await s.outgoing.answered).remoteSdp).toBe(BOT_SDP);
  });

  it('a 503 from the first target: ACKed, and the INVITE goes to the second at once', async () => {
    const s = await setup(10_000);
    const toFirst = await s.first.next('INVITE');
    s.first.reply(toFirst, 503, 'Service Unavailable');
    await s.first.next('ACK');
    const toSecond = await s.second.next('INVITE', 500);
    expectNextTransaction(toFirst, toSecond);
    s.second.reply(toSecond, 200, 'OK', { body: BOT_SDP });
    expect((await s.outgoing.answered).remoteSdp).toBe(BOT_SDP);
  });

  it('another final answer from the first target (486) ends the INVITE: the second is not tried', async () => {
    const s = await setup(10_000);
    s.first.reply(await s.first.next('INVITE'), 486, 'Busy Here');
    const failure = await failureOf(s.outgoing.answered);
    expect(failure.cause).toBe('sip-486');
    expect(s.second.count('INVITE')).toBe(0);
  });

  it('Timer B at the first target (before CCAI_TARGET_TIMEOUT_MS): the second is tried; Timer B there too ends the INVITE, saying every target failed', async () => {
    const s = await setup(5_000);
    const toFirst = await s.first.next('INVITE');
    const toSecond = await s.second.next('INVITE', 1_500);
    expect(toSecond.at - toFirst.at).toBeGreaterThanOrEqual(600);
    expect(toSecond.at - toFirst.at).toBeLessThan(5_000);
    const failure = await failureOf(s.outgoing.answered);
    expect(failure.kind).toBe('timeout');
    expect(failure.message).toMatch(/Timer B\) \(the last of 2 CCAI targets; each failed\)$/);
  });

  it('cancel() while the first target is silent: no INVITE goes to the second', async () => {
    const s = await setup(200);
    await s.first.next('INVITE');
    s.outgoing.cancel();
    expect((await failureOf(s.outgoing.answered)).kind).toBe('canceled');
    await sleep(400);
    expect(s.second.count('INVITE')).toBe(0);
  });

  it('TCP: the first target refuses the connection; the INVITE goes to the second at once, on its own connection', async () => {
    const closed = await StreamPeer.start();
    const refusing = closed.port;
    await closed.close();
    const second = await StreamPeer.start();
    const targets = await dnsWithTargets('_sip._tcp.ccai.test', refusing, second.port);
    const backend = loopbackBackend({ transport: 'tcp', timers: TIMERS, targetTimeoutMs: 10_000, targets });
    await backend.start();
    cleanups.push(() => backend.stop(), () => second.close());
    const outgoing = backend.invite(inviteTo('tcp'));
    const invite = await second.next('INVITE', 1_000);
    expect(invite.message.cseq).toEqual({ seq: 2, method: 'INVITE' });
    second.reply(invite, 200, 'OK', BOT_SDP);
    expect((await outgoing.answered).remoteSdp).toBe(BOT_SDP);
  });
});
