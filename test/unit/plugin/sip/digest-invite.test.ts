import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest } from '../../../../plugin/sip/backend.js';
import { digestVerifies } from '../../../support/digest-check.js';
import { loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, FakeUas, testLog, type Received } from './fake-uas.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const CREDENTIALS = { username: 'talkdesk-gw', password: 's3cret' };

/** `null`: no credentials configured */
async function setup(credentials: InviteRequest['credentials'] | null = CREDENTIALS) {
  // a session-timer "second" of 100 ms, so that a refresh comes within the test
  const backend = loopbackBackend({ timers: { T1: 10, T2: 40, T4: 40, D: 80 }, sessionSecondMs: 100 });
  await backend.start();
  const uas = await FakeUas.start();
  cleanups.push(() => backend.stop(), () => uas.close());
  const request: InviteRequest = {
    requestUri: uas.uri,
    fromUser: 'talkdesk',
    headers: {},
    sdp: sdpOffer(20000),
    log: testLog,
    delegate: { onBye: vi.fn(), onRemoteSdp: vi.fn(), onRefer: vi.fn(), onEnded: vi.fn() },
    ...(credentials === null || credentials === undefined ? {} : { credentials }),
  };
  return { backend, uas, delegate: request.delegate, outgoing: backend.invite(request) };
}

const challenge = (header: string, nonce: string, extra = '') => [`${header}: Digest realm="ccai.example.com", nonce="${nonce}", qop="auth", algorithm=SHA-256${extra}`];

function expectSameDialogNextCSeq(first: Received, second: Received): void {
  expect(second.message.callId).toBe(first.message.callId);
  expect(second.message.fromTag).toBe(first.message.fromTag);
  expect(second.message.cseq).toEqual({ seq: first.message.cseq.seq + 1, method: 'INVITE' });
  expect(second.message.branch).not.toBe(first.message.branch);
}

describe('EmbeddedSipBackend: a challenged INVITE (RFC 3261 §22.2)', () => {
  it('407 → the INVITE again with Proxy-Authorization (SHA-256, qop=auth), same Call-ID and From tag, CSeq + 1; the 200 is the call', async () => {
    const s = await setup();
    const first = await s.uas.next('INVITE');
    expect(first.message.sip.get('proxy-authorization')).toBeUndefined();
    s.uas.reply(first, 407, 'Proxy Authentication Required', { headers: challenge('Proxy-Authenticate', 'n1') });
    await s.uas.next('ACK');
    const second = await s.uas.nextAfter('INVITE', first);
    expectSameDialogNextCSeq(first, second);
    const auth = second.message.sip.get('proxy-authorization')!;
    expect(auth).toMatch(/^Digest username="talkdesk-gw", realm="ccai.example.com", nonce="n1", uri="sip:/);
    expect(auth).toContain('algorithm=SHA-256');
    expect(digestVerifies(auth, 'INVITE', 's3cret')).toBe(true);
    expect(auth).not.toContain('s3cret');
    s.uas.reply(second, 200, 'OK', { body: BOT_SDP });
    await s.uas.next('ACK');
    expect((await s.outgoing.answered).remoteSdp).toBe(BOT_SDP);
  });

  it('401 → Authorization; a stale nonce is answered again with the new one; a third challenge fails sip-auth-failed', async () => {
    const s = await setup();
    const first = await s.uas.next('INVITE');
    s.uas.reply(first, 401, 'Unauthorized', { headers: challenge('WWW-Authenticate', 'n1') });
    const second = await s.uas.nextAfter('INVITE', first);
    expect(digestVerifies(second.message.sip.get('authorization')!, 'INVITE', 's3cret')).toBe(true);
    s.uas.reply(second, 401, 'Unauthorized', { headers: challenge('WWW-Authenticate', 'n2', ', stale=true') });
    const third = await s.uas.nextAfter('INVITE', second);
    expectSameDialogNextCSeq(second, third);
    expect(third.message.sip.get('authorization')).toContain('nonce="n2"');
    // one Authorization only: the stale one was replaced
    expect(third.raw.match(/^Authorization:/gim)).toHaveLength(1);
    s.uas.reply(third, 401, 'Unauthorized', { headers: challenge('WWW-Authenticate', 'n3') });
    await expect(s.outgoing.answered).rejects.toMatchObject({ cause: 'sip-auth-failed', status: 401 });
  });

  it('wrong credentials: challenged again without stale → sip-auth-failed, no third INVITE', async () => {
    const s = await setup({ username: 'talkdesk-gw', password: 'wrong' });
    const first = await s.uas.next('INVITE');
    s.uas.reply(first, 407, 'Proxy Authentication Required', { headers: challenge('Proxy-Authenticate', 'n1') });
    s.uas.reply(await s.uas.nextAfter('INVITE', first), 407, 'Proxy Authentication Required', { headers: challenge('Proxy-Authenticate', 'n2') });
    await expect(s.outgoing.answered).rejects.toMatchObject({ cause: 'sip-auth-failed' });
    await new Promise((r) => setTimeout(r, 100));
    expect(s.uas.cseqs('INVITE')).toEqual([1, 2]);
  });

  it.each([
    ['no credentials configured', null],
    ['a challenge for another realm than the configured one', { ...CREDENTIALS, realm: 'other.example.com' }],
  ])('%s: the 407 ends the call as sip-407, and nothing is answered', async (_what, credentials) => {
    const s = await setup(credentials);
    s.uas.reply(await s.uas.next('INVITE'), 407, 'Proxy Authentication Required', { headers: challenge('Proxy-Authenticate', 'n1') });
    await expect(s.outgoing.answered).rejects.toMatchObject({ cause: 'sip-407' });
    expect(s.uas.cseqs('INVITE')).toEqual([1]);
  });
});

describe('EmbeddedSipBackend: a challenged BYE', () => {
  it('a 407 to our BYE is answered once with the credentials (next CSeq); the second BYE ends the leg', async () => {
    const s = await setup();
    const invite = await s.uas.next('INVITE');
    s.uas.reply(invite, 200, 'OK', { body: BOT_SDP });
    await s.uas.next('ACK');
    const leg = await s.outgoing.answered;
    const hangup = leg.hangup({ 'X-Reason': 'talkdesk-stop' });
    const bye = await s.uas.next('BYE');
    s.uas.reply(bye, 407, 'Proxy Authentication Required', { headers: challenge('Proxy-Authenticate', 'b1') });
    const again = await s.uas.next('BYE');
    expect(again.message.callId).toBe(bye.message.callId);
    expect(again.message.cseq).toEqual({ seq: bye.message.cseq.seq + 1, method: 'BYE' });
    expect(again.message.sip.get('x-reason')).toBe('talkdesk-stop');
    const auth = again.message.sip.get('proxy-authorization')!;
    expect(auth).toContain('nonce="b1"');
    expect(digestVerifies(auth, 'BYE', 's3cret')).toBe(true);
    s.uas.reply(again, 200, 'OK');
    await hangup;
    await vi.waitFor(() => expect(s.backend.activeCounts.dialogs).toBe(0));
  });
});

describe('EmbeddedSipBackend: a challenged session refresh (RFC 4028)', () => {
  it('a 407 to our refresh (UPDATE) is answered once with the credentials; the session carries on, the next refresh unchallenged', async () => {
    const s = await setup();
    const invite = await s.uas.next('INVITE');
    s.uas.reply(invite, 200, 'OK', { body: BOT_SDP, headers: ['Session-Expires: 2;refresher=uac', 'Allow: INVITE, ACK, BYE, UPDATE'] });
    await s.uas.next('ACK');
    await s.outgoing.answered;
    const update = await s.uas.next('UPDATE');
    expect(update.message.sip.get('proxy-authorization')).toBeUndefined();
    s.uas.reply(update, 407, 'Proxy Authentication Required', { headers: challenge('Proxy-Authenticate', 'u1') });
    const again = await s.uas.nextAfter('UPDATE', update);
    expect(again.message.cseq).toEqual({ seq: update.message.cseq.seq + 1, method: 'UPDATE' });
    expect(digestVerifies(again.message.sip.get('proxy-authorization')!, 'UPDATE', 's3cret')).toBe(true);
    s.uas.reply(again, 200, 'OK', { headers: ['Session-Expires: 2;refresher=uac'] });
    const next = await s.uas.nextAfter('UPDATE', again);
    expect(next.message.sip.get('proxy-authorization')).toBeUndefined();
    s.uas.reply(next, 200, 'OK', { headers: ['Session-Expires: 2;refresher=uac'] });
    expect(s.delegate.onEnded).not.toHaveBeenCalled();
    expect(s.delegate.onBye).not.toHaveBeenCalled();
  });
});
