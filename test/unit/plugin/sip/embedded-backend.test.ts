import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest, LegDelegate, OutgoingInvite, SipLeg, SipMessageView } from '../../../../plugin/sip/backend.js';
import type { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import type { SipTimers } from '../../../../plugin/sip/embedded/timers.js';
import { failureOf, loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, FakeUas, testLog, type Received } from './fake-uas.js';

/** short RFC timers: T1 10 ms makes B/F/H/J/L/M 640 ms */
const FAST: Partial<SipTimers> = { T1: 10, T2: 40, T4: 40, D: 80 };
const OUR_SDP = sdpOffer(20000);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  backend: EmbeddedSipBackend;
  uas: FakeUas;
  delegate: { [K in keyof LegDelegate]-?: ReturnType<typeof vi.fn> };
  request: InviteRequest;
}

async function setup(timers: Partial<SipTimers> = FAST): Promise<Setup> {
  const backend = loopbackBackend({ timers });
  await backend.start();
  const uas = await FakeUas.start();
  cleanups.push(
    () => backend.stop(),
    () => uas.close(),
  );
  const delegate = { onProgress: vi.fn(), onBye: vi.fn(), onRemoteSdp: vi.fn(), onInfo: vi.fn(), onRefer: vi.fn(), onEnded: vi.fn() };
  const request: InviteRequest = {
    requestUri: uas.uri,
    fromUser: 'talkdesk',
    headers: { 'X-Talkdesk-Call-Sid': 'CA123' },
    sdp: OUR_SDP,
    log: testLog,
    delegate,
  };
  return { backend, uas, delegate, request };
}

/** The backend sends the INVITE; resolves once it reached the fake UAS. */
async function invited(s: Setup): Promise<{ outgoing: OutgoingInvite; invite: Received }> {
  const outgoing = s.backend.invite(s.request);
  return { outgoing, invite: await s.uas.next('INVITE') };
}

/** INVITE → 180, reported to the delegate: an early, cancelable call */
async function ringingCall(s: Setup): Promise<{ outgoing: OutgoingInvite; invite: Received }> {
  const call = await invited(s);
  s.uas.reply(call.invite, 180, 'Ringing');
  await vi.waitFor(() => expect(s.delegate.onProgress).toHaveBeenCalledWith(180));
  return call;
}

/** INVITE → 200 with SDP → ACK: a confirmed leg */
async function answeredCall(s: Setup): Promise<{ leg: SipLeg; invite: Received }> {
  const { outgoing, invite } = await invited(s);
  s.uas.reply(invite, 200, 'OK', { body: BOT_SDP });
  await s.uas.next('ACK');
  return { leg: await outgoing.answered, invite };
}

async function expectNoLeaks(backend: EmbeddedSipBackend): Promise<void> {
  await vi.waitFor(() => expect(backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 }), { timeout: 3000, interval: 20 });
}


describe('EmbeddedSipBackend: INVITE client transaction', () => {
  it('builds the INVITE as specified', async () => {
    const s = await setup();
    const { message, raw } = (await invited(s)).invite;
    const port = s.backend.localPort;
    expect(raw.startsWith(`INVITE ${s.uas.uri} SIP/2.0\r\n`)).toBe(true);
    expect(message.sip.get('via')).toMatch(new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${port};branch=z9hG4bK[0-9a-f]+;rport$`));
    expect(message.sip.get('from')).toMatch(new RegExp(`^<sip:talkdesk@127\\.0\\.0\\.1:${port}>;tag=[0-9a-f]+$`));
    expect(message.sip.get('to')).toBe(`<sip:+17345551234@127.0.0.1:${s.uas.port}>`);
    expect(message.sip.get('cseq')).toBe('1 INVITE');
    expect(message.sip.get('contact')).toBe(`<sip:talkdesk@127.0.0.1:${port};transport=udp>`);
    expect(message.sip.get('max-forwards')).toBe('70');
    expect(message.sip.get('allow')).toBe('INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER');
    expect(message.sip.get('user-agent')).toBeTruthy();
    expect(message.sip.get('X-Talkdesk-Call-Sid')).toBe('CA123');
    expect(raw).toContain('\r\nContent-Type: application/sdp\r\n');
    expect(message.sip.get('content-length')).toBe(String(Buffer.byteLength(OUR_SDP)));
    expect(message.sip.body).toBe(OUR_SDP);
  });

  it('retransmits the INVITE on Timer A (T1, 2T1, 4T1, …) and fails with timeout on Timer B', async () => {
    const s = await setup({ T1: 25 }); // B = 1600 ms: sends at 0, 25, 75, 175, 375, 775
    const started = Date.now();
    const outgoing = s.backend.invite(s.request);
    const failure = await failureOf(outgoing.answered);
    expect(failure.kind).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1590);
    const times = s.uas.received.filter((r) => r.message.sip.method === 'INVITE').map((r) => r.at);
    expect(times).toHaveLength(7); // the original + retransmissions at 25·(1, 3, 7, 15, 31, 63) ms
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    [25, 50, 100, 200, 400, 800].forEach((expected, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(expected - 5);
      expect(gaps[i]).toBeLessThan(expected + 40);
    });
    await expectNoLeaks(s.backend);
  });

  it('stops retransmitting on a provisional response and reports 180 but not 100', async () => {
    const s = await setup();
    const { invite } = await invited(s);
    s.uas.reply(invite, 100, 'Trying', { toTag: null });
    s.uas.reply(invite, 180, 'Ringing');
    await vi.waitFor(() => expect(s.delegate.onProgress).toHaveBeenCalledWith(180));
    const count = s.uas.count('INVITE');
    await new Promise((r) => setTimeout(r, 100));
    expect(s.uas.count('INVITE')).toBe(count);
    expect(s.delegate.onProgress).toHaveBeenCalledTimes(1);
  });

  it('ACKs a 486 in the INVITE transaction (same branch) and rejects with rejected(486)', async () => {
    const s = await setup();
    const { outgoing, invite } = await invited(s);
    s.uas.reply(invite, 486, 'Busy Here');
    const failure = await failureOf(outgoing.answered);
    expect(failure.kind).toBe('rejected');
    expect(failure.status).toBe(486);
    expect(failure.cause).toBe('sip-486');
    const ack = await s.uas.next('ACK');
    expect(ack.message.branch).toBe(invite.message.branch);
    expect(ack.message.sip.get('cseq')).toBe('1 ACK');
    expect(ack.message.toTag).toBe(s.uas.tag);
    expect(ack.raw.split('\r\n')[0]).toBe(`ACK ${s.uas.uri} SIP/2.0`);
    // a retransmitted 486 is answered with the same ACK, not passed up again
    s.uas.reply(invite, 486, 'Busy Here');
    const again = await s.uas.next('ACK');
    expect(again.raw).toBe(ack.raw);
    await expectNoLeaks(s.backend);
  });
});

describe('EmbeddedSipBackend: cancel()', () => {
  it('after a 180: sends CANCEL, ACKs the 487 and rejects with canceled at once', async () => {
    const s = await setup();
    const { outgoing, invite } = await ringingCall(s);
    outgoing.cancel();
    expect((await failureOf(outgoing.answered)).kind).toBe('canceled');
    const cancel = await s.uas.next('CANCEL');
    expect(cancel.message.branch).toBe(invite.message.branch);
    expect(cancel.message.callId).toBe(invite.message.callId);
    expect(cancel.message.sip.get('from')).toBe(invite.message.sip.get('from'));
    expect(cancel.message.sip.get('to')).toBe(invite.message.sip.get('to'));
    expect(cancel.message.sip.get('cseq')).toBe('1 CANCEL');
    expect(cancel.raw.split('\r\n')[0]).toBe(`CANCEL ${s.uas.uri} SIP/2.0`);
    s.uas.reply(cancel, 200, 'OK');
    s.uas.reply(invite, 487, 'Request Terminated');
    const ack = await s.uas.next('ACK');
    expect(ack.message.branch).toBe(invite.message.branch);
    outgoing.cancel(); // idempotent
    await expectNoLeaks(s.backend);
    expect(s.uas.count('CANCEL')).toBe(1);
  });

  it('before any provisional: sends CANCEL only once the first provisional arrives (RFC 3261 §9.1)', async () => {
    const s = await setup({ ...FAST, T1: 50 });
    const { outgoing, invite } = await invited(s);
    outgoing.cancel();
    expect((await failureOf(outgoing.answered)).kind).toBe('canceled');
    await new Promise((r) => setTimeout(r, 120));
    expect(s.uas.count('CANCEL')).toBe(0);
    s.uas.reply(invite, 180, 'Ringing');
    const cancel = await s.uas.next('CANCEL');
    expect(cancel.message.branch).toBe(invite.message.branch);
    expect(s.delegate.onProgress).not.toHaveBeenCalled();
    s.uas.reply(cancel, 200, 'OK');
    s.uas.reply(invite, 487, 'Request Terminated');
    await s.uas.next('ACK');
    await expectNoLeaks(s.backend);
  });

  it('a 2xx that races in after cancel() is ACKed and BYEd at once', async () => {
    const s = await setup();
    const { outgoing, invite } = await ringingCall(s);
    outgoing.cancel();
    const cancel = await s.uas.next('CANCEL');
    s.uas.reply(cancel, 200, 'OK');
    s.uas.reply(invite, 200, 'OK', { body: BOT_SDP });
    const ack = await s.uas.next('ACK');
    expect(ack.message.branch).not.toBe(invite.message.branch);
    const bye = await s.uas.next('BYE');
    expect(bye.message.toTag).toBe(s.uas.tag);
    expect(bye.message.sip.get('cseq')).toBe('2 BYE');
    s.uas.reply(bye, 200, 'OK');
    expect((await failureOf(outgoing.answered)).kind).toBe('canceled');
    await expectNoLeaks(s.backend);
  });
});

describe('EmbeddedSipBackend: answered call', () => {
  it('ACKs the 2xx to the Contact, resolves a leg, and re-sends the ACK for a 2xx retransmission', async () => {
    const s = await setup();
    const { outgoing, invite } = await invited(s);
    const ok = s.uas.reply(invite, 200, 'OK', { body: BOT_SDP });
    const ack = await s.uas.next('ACK');
    expect(ack.raw.split('\r\n')[0]).toBe(`ACK sip:bot@127.0.0.1:${s.uas.port};transport=udp SIP/2.0`);
    expect(ack.message.branch).not.toBe(invite.message.branch);
    expect(ack.message.sip.get('cseq')).toBe('1 ACK');
    const leg = await outgoing.answered;
    expect(leg.callId).toBe(invite.message.callId);
    expect(leg.remoteSdp).toBe(BOT_SDP);
    s.uas.send(ok, invite.message.via.port!);
    const again = await s.uas.next('ACK');
    expect(again.raw).toBe(ack.raw);
    expect(s.backend.activeCounts.dialogs).toBe(1);
  });

  it('routes in-dialog requests through the Record-Route set, reversed', async () => {
    const s = await setup();
    const { outgoing, invite } = await invited(s);
    // both proxies are the fake UAS itself, so the requests still reach it
    const p = s.uas.port;
    s.uas.reply(invite, 200, 'OK', {
      body: BOT_SDP,
      headers: [`Record-Route: <sip:127.0.0.1:${p};lr;x=near>`, `Record-Route: <sip:127.0.0.1:${p};lr;x=far>`],
    });
    const ack = await s.uas.next('ACK');
    expect(ack.message.sip.get('route')).toBe(`<sip:127.0.0.1:${p};lr;x=far>,<sip:127.0.0.1:${p};lr;x=near>`);
    const leg = await outgoing.answered;
    void leg.hangup();
    const bye = await s.uas.next('BYE');
    expect(bye.raw).toContain(`\r\nRoute: <sip:127.0.0.1:${p};lr;x=far>\r\nRoute: <sip:127.0.0.1:${p};lr;x=near>\r\n`);
    s.uas.reply(bye, 200, 'OK');
    await expectNoLeaks(s.backend);
  });

  it('a 2xx without SDP is ACKed, BYEd and rejected (488)', async () => {
    const s = await setup();
    const { outgoing, invite } = await invited(s);
    s.uas.reply(invite, 200, 'OK');
    await s.uas.next('ACK');
    const failure = await failureOf(outgoing.answered);
    expect(failure.kind).toBe('rejected');
    expect(failure.status).toBe(488);
    s.uas.reply(await s.uas.next('BYE'), 200, 'OK');
    await expectNoLeaks(s.backend);
  });

  it('remote BYE: 200 OK, then onBye with X- headers readable case-insensitively; no leak', async () => {
    const s = await setup();
    const { invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'BYE', {
      headers: ['X-Escalate: true', 'X-Escalation-Data: {"queue":"billing"}'],
    });
    const ok = await s.uas.next('200');
    expect(ok.message.sip.get('cseq')).toMatch(/ BYE$/);
    await vi.waitFor(() => expect(s.delegate.onBye).toHaveBeenCalledTimes(1));
    const bye = s.delegate.onBye.mock.calls[0]![0] as SipMessageView;
    expect(bye.get('x-escalate')).toBe('true');
    expect(bye.get('X-ESCALATION-DATA')).toBe('{"queue":"billing"}');
    expect(bye.has('x-escalate')).toBe(true);
    expect(bye.method).toBe('BYE');
    await expectNoLeaks(s.backend);
  });

  it('a retransmitted BYE gets the cached 200 and no second onBye', async () => {
    const s = await setup();
    const { invite } = await answeredCall(s);
    const bye = s.uas.requestInDialog(invite, 'BYE');
    const first = await s.uas.next('200');
    s.uas.send(bye, invite.message.via.port!);
    const second = await s.uas.next('200');
    expect(second.raw).toBe(first.raw);
    expect(s.delegate.onBye).toHaveBeenCalledTimes(1);
    await expectNoLeaks(s.backend);
  });

  it('re-INVITE: 200 with our SDP, onRemoteSdp, 200 re-sent until the ACK', async () => {
    const s = await setup();
    const { invite } = await answeredCall(s);
    const newSdp = BOT_SDP.replace('16000', '16002');
    const reinvite = s.uas.requestInDialog(invite, 'INVITE', { body: newSdp });
    const ok = await s.uas.next('200');
    expect(ok.message.sip.body).toBe(OUR_SDP);
    expect(ok.raw).toContain('\r\nContent-Type: application/sdp\r\n');
    expect(ok.message.sip.get('contact')).toContain('sip:talkdesk@127.0.0.1');
    expect(s.delegate.onRemoteSdp).toHaveBeenCalledWith(newSdp);
    // no ACK yet: Timer G re-sends the 2xx (T1 = 10 ms)
    const retransmitted = await s.uas.next('200');
    expect(retransmitted.raw).toBe(ok.raw);
    // a retransmitted re-INVITE gets the same 200, and is not reported again
    s.uas.send(reinvite, invite.message.via.port!);
    await vi.waitFor(() => expect(s.uas.count('200')).toBeGreaterThanOrEqual(3));
    expect(s.delegate.onRemoteSdp).toHaveBeenCalledTimes(1);
    // ACK (new branch, same CSeq) stops the retransmissions
    const cseq = Number.parseInt(/^CSeq: (\d+)/m.exec(reinvite)![1]!, 10);
    s.uas.send(reinvite.replace(/^INVITE /, 'ACK ').replace(/branch=z9hG4bK\w+/, 'branch=z9hG4bKack1').replace(/CSeq: \d+ INVITE/, `CSeq: ${cseq} ACK`).replace(/Content-Type[^\r]*\r\n/, '').replace(/Content-Length: \d+\r\n\r\n[\s\S]*$/, 'Content-Length: 0\r\n\r\n'), invite.message.via.port!);
    await new Promise((r) => setTimeout(r, 60));
    const settled = s.uas.count('200');
    await new Promise((r) => setTimeout(r, 150));
    expect(s.uas.count('200')).toBe(settled);
  });

  it('answers OPTIONS 200, INFO 200 (+ onInfo), an unknown method 501', async () => {
    const s = await setup();
    const { invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'OPTIONS');
    expect((await s.uas.next('200')).message.sip.get('allow')).toContain('INVITE');
    s.uas.requestInDialog(invite, 'INFO', { headers: ['Content-Type: application/dtmf-relay'] });
    expect((await s.uas.next('200')).message.cseq.method).toBe('INFO');
    await vi.waitFor(() => expect(s.delegate.onInfo).toHaveBeenCalledTimes(1));
    s.uas.requestInDialog(invite, 'MESSAGE');
    expect((await s.uas.next('501')).message.cseq.method).toBe('MESSAGE');
  });

  it('REFER: 202 with our Contact, then a NOTIFY in the dialog (next CSeq, Event: refer, sipfrag 200); a second REFER\'s NOTIFY carries id', async () => {
    const s = await setup();
    const { invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'REFER', { headers: ['Refer-To: <sip:billing@agents.example.com>'] });
    const accepted = await s.uas.next('202');
    expect(accepted.message.sip.get('contact')).toContain('sip:talkdesk@127.0.0.1');
    const notify = await s.uas.next('NOTIFY');
    expect(notify.raw.split('\r\n')[0]).toBe(`NOTIFY sip:bot@127.0.0.1:${s.uas.port};transport=udp SIP/2.0`);
    expect(notify.message.cseq.seq).toBe(2); // the INVITE was 1
    expect(notify.message.sip.get('event')).toBe('refer');
    expect(notify.message.sip.get('subscription-state')).toBe('terminated;reason=noresource');
    expect(notify.message.sip.get('content-type')).toBe('message/sipfrag;version=2.0');
    expect(notify.message.sip.body).toBe('SIP/2.0 200 OK\r\n');
    s.uas.reply(notify, 200, 'OK');
    expect(s.delegate.onRefer).toHaveBeenCalledTimes(1);

    const second = s.uas.requestInDialog(invite, 'REFER', { headers: ['Refer-To: <sip:sales@agents.example.com>'] });
    await s.uas.next('202');
    const seq = /^CSeq: (\d+)/m.exec(second)![1];
    expect((await s.uas.next('NOTIFY')).message.sip.get('event')).toBe(`refer;id=${seq}`);
    expect(s.delegate.onRefer).toHaveBeenCalledTimes(2);
  });

  it('REFER with two Refer-To values gets 400; once our BYE is out, a REFER gets 603; neither is reported', async () => {
    const s = await setup();
    const { leg, invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'REFER', { headers: ['Refer-To: <sip:a@h>, <sip:b@h>'] });
    await s.uas.next('400');
    void leg.hangup();
    const bye = await s.uas.next('BYE');
    s.uas.requestInDialog(invite, 'REFER', { headers: ['Refer-To: <sip:a@h>'] });
    await s.uas.next('603');
    s.uas.reply(bye, 200, 'OK');
    expect(s.delegate.onRefer).not.toHaveBeenCalled();
    expect(s.uas.count('NOTIFY')).toBe(0);
    await expectNoLeaks(s.backend);
  });

  it('a throwing delegate is contained: the request is still answered and the leg keeps working', async () => {
    const s = await setup();
    s.delegate.onInfo.mockImplementation(() => {
      throw new Error('boom');
    });
    const { invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'INFO');
    await s.uas.next('200');
    s.uas.requestInDialog(invite, 'OPTIONS');
    await s.uas.next('200');
  });

  it('hangup(): BYE with the headers, CSeq+1, to the remote target; idempotent; dialog removed', async () => {
    const s = await setup();
    const { leg, invite } = await answeredCall(s);
    const first = leg.hangup({ 'X-Reason': 'talkdesk-stop' });
    const second = leg.hangup({ 'X-Other': 'ignored' });
    expect(second).toBe(first);
    const bye = await s.uas.next('BYE');
    expect(bye.raw.split('\r\n')[0]).toBe(`BYE sip:bot@127.0.0.1:${s.uas.port};transport=udp SIP/2.0`);
    expect(bye.message.sip.get('X-Reason')).toBe('talkdesk-stop');
    expect(bye.message.sip.has('X-Other')).toBe(false);
    expect(bye.message.sip.get('cseq')).toBe('2 BYE');
    expect(bye.message.callId).toBe(invite.message.callId);
    s.uas.reply(bye, 200, 'OK');
    await expect(first).resolves.toBeUndefined();
    // one BYE transaction: with T1 at 10 ms a busy machine may see it retransmitted before the 200, never a second one
    const byes = s.uas.received.filter((r) => r.message.sip.method === 'BYE');
    expect(new Set(byes.map((r) => `${r.message.branch} ${r.message.sip.get('cseq')}`))).toEqual(new Set([`${bye.message.branch} 2 BYE`]));
    await expectNoLeaks(s.backend);
  });

  it('hangup() resolves on Timer F when the bot never answers, after retransmitting on Timer E', async () => {
    const s = await setup();
    const { leg } = await answeredCall(s);
    const started = Date.now();
    await leg.hangup();
    expect(Date.now() - started).toBeGreaterThanOrEqual(630);
    expect(s.uas.count('BYE')).toBeGreaterThan(3);
    await expectNoLeaks(s.backend);
  });

  it('hangup() after the bot hung up sends nothing', async () => {
    const s = await setup();
    const { leg, invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'BYE');
    await vi.waitFor(() => expect(s.delegate.onBye).toHaveBeenCalled());
    await leg.hangup();
    await new Promise((r) => setTimeout(r, 50));
    expect(s.uas.count('BYE')).toBe(0);
  });
});

describe('EmbeddedSipBackend: requests outside our dialogs', () => {
  it('BYE for an unknown dialog gets 481', async () => {
    const s = await setup();
    const { invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'BYE', { toTag: 'not-ours' });
    expect((await s.uas.next('481')).message.cseq.method).toBe('BYE');
    expect(s.delegate.onBye).not.toHaveBeenCalled();
    expect(s.backend.activeCounts.dialogs).toBe(1);
  });

  it('an out-of-dialog INVITE gets 403 (UAC only) and its ACK is absorbed', async () => {
    const s = await setup();
    const raw = [
      `INVITE sip:talkdesk@127.0.0.1:${s.backend.localPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${s.uas.port};branch=z9hG4bKin1`,
      `From: <sip:bot@127.0.0.1>;tag=abc`,
      `To: <sip:talkdesk@127.0.0.1>`,
      'Call-ID: incoming-1',
      'CSeq: 1 INVITE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    s.uas.send(raw, s.backend.localPort);
    const forbidden = await s.uas.next('403');
    expect(forbidden.message.toTag).toBeTruthy();
    s.uas.send(raw.replace('INVITE sip', 'ACK sip').replace('1 INVITE', '1 ACK'), s.backend.localPort);
    await expectNoLeaks(s.backend);
  });

  it.each([
    { status: '403', toTag: '', what: 'an out-of-dialog INVITE' },
    { status: '481', toTag: ';tag=no-such-dialog', what: 'an INVITE naming a dialog we do not have' },
  ])('$what is answered statelessly: one $status, never retransmitted, no transaction kept (no reflector)', async ({ status, toTag }) => {
    const s = await setup();
    const invite = (n: number): string =>
      [
        `INVITE sip:talkdesk@127.0.0.1:${s.backend.localPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${s.uas.port};branch=z9hG4bKrefl${n}`,
        `From: <sip:scanner@127.0.0.1>;tag=s${n}`,
        `To: <sip:talkdesk@127.0.0.1>${toTag}`,
        `Call-ID: reflector-${n}`,
        'CSeq: 1 INVITE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    s.uas.send(invite(0), s.backend.localPort);
    await s.uas.next(status);
    // nothing is held for it: no server transaction, so no Timer G retransmissions while no ACK comes (§17.2.1)
    expect(s.backend.activeCounts.transactions).toBe(0);
    // a flood from the same source (a spoofed victim address) gets no more answers within the rate interval
    for (let n = 1; n <= 50; n++) s.uas.send(invite(n), s.backend.localPort);
    // Timer H with FAST timers is 640 ms: a stateful answer would have been re-sent about seven times by then
    await new Promise((r) => setTimeout(r, 800));
    expect(s.uas.count(status)).toBe(1);
    expect(s.backend.activeCounts.transactions).toBe(0);
  });

  it('drops malformed datagrams without throwing and keeps serving', async () => {
    const s = await setup();
    for (const junk of ['', 'hello', '\u0000\u0001\u0002', 'SIP/2.0 200 OK\r\nVia: x\r\n\r\n', 'INVITE sip:a@b SIP/2.0\r\n\r\n']) {
      s.uas.send(junk, s.backend.localPort);
    }
    s.uas.send(Buffer.alloc(60_000, 0x41), s.backend.localPort);
    const { invite } = await answeredCall(s);
    s.uas.requestInDialog(invite, 'OPTIONS');
    await s.uas.next('200');
  });
});

describe('EmbeddedSipBackend: lifecycle and transport failures', () => {
  it('start() names the port setting when the port is taken', async () => {
    const blocker = createSocket('udp4');
    await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const backend = loopbackBackend({ port: blocker.address().port });
    await expect(backend.start()).rejects.toThrow(/SIP_PORT.*EADDRINUSE/);
  });

  it('invite() before start() rejects as unavailable', async () => {
    const backend = loopbackBackend();
    const s = await setup();
    expect((await failureOf(backend.invite(s.request).answered)).kind).toBe('unavailable');
  });

  it.each([
    ['a TLS request-URI on the UDP backend', 'sip:bot@127.0.0.1:5061;transport=tls'],
    ['a request-URI that is not SIP', 'mailto:bot@example.com'],
    ['a host that does not resolve', 'sip:bot@no-such-host.invalid'],
  ])('%s fails as transport', async (_name, requestUri) => {
    const s = await setup();
    const failure = await failureOf(s.backend.invite({ ...s.request, requestUri }).answered);
    expect(failure.kind).toBe('transport');
    expect(s.backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 });
  });

  it('stop() ends pending INVITEs as unavailable and clears every timer', async () => {
    const s = await setup({ T1: 500 });
    const { outgoing } = await invited(s);
    await s.backend.stop();
    expect((await failureOf(outgoing.answered)).kind).toBe('unavailable');
    expect(s.backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 });
  });
});
