import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest, OutgoingInvite, SipLeg } from '../../../../plugin/sip/backend.js';
import type { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import { dueInMs, termsFromAnswer, termsFromRequest } from '../../../../plugin/sip/embedded/session-timer.js';
import { loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, FakeUas, testLog, type Received } from './fake-uas.js';

/** one Session-Expires second lasts 100 ms here: `Session-Expires: 2` is a 200 ms session */
const SECOND_MS = 100;
const OUR_SDP = sdpOffer(20000);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(delegate: Partial<InviteRequest['delegate']> = {}) {
  const backend = loopbackBackend({ timers: { T1: 10, T2: 40, T4: 40, D: 80 }, sessionSecondMs: SECOND_MS });
  await backend.start();
  const uas = await FakeUas.start();
  cleanups.push(
    () => backend.stop(),
    () => uas.close(),
  );
  const calls = { onBye: vi.fn(), onRemoteSdp: vi.fn(), onRefer: vi.fn(), onEnded: vi.fn(), ...delegate };
  const request: InviteRequest = { requestUri: uas.uri, fromUser: 'talkdesk', headers: {}, sdp: OUR_SDP, log: testLog, delegate: calls };
  return { backend, uas, delegate: calls, request };
}
type Setup = Awaited<ReturnType<typeof setup>>;

/** INVITE → 200 (SDP + `headers`) → ACK */
async function answered(s: Setup, headers: string[]): Promise<{ leg: SipLeg; invite: Received; outgoing: OutgoingInvite }> {
  const outgoing = s.backend.invite(s.request);
  const invite = await s.uas.next('INVITE');
  s.uas.reply(invite, 200, 'OK', { body: BOT_SDP, headers });
  await s.uas.next('ACK');
  return { leg: await outgoing.answered, invite, outgoing };
}

async function noLeaks(backend: EmbeddedSipBackend): Promise<void> {
  await vi.waitFor(() => expect(backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 }), { timeout: 3000, interval: 20 });
}

describe('RFC 4028 terms', () => {
  const get = (headers: Record<string, string>) => (name: string) => headers[name];

  it('read from a 2xx to our request: uac is us; no refresher → us; none → what we asked, or no timer', () => {
    expect(termsFromAnswer(get({ 'session-expires': '1800;refresher=uas' }), undefined)).toEqual({ seconds: 1800, refresher: 'them' });
    expect(termsFromAnswer(get({ 'session-expires': '90;refresher=uac', 'min-se': '90' }), undefined)).toEqual({ seconds: 90, refresher: 'us', minSe: 90 });
    expect(termsFromAnswer(get({ x: '120' }), undefined)).toEqual({ seconds: 120, refresher: 'us' });
    expect(termsFromAnswer(get({}), undefined)).toBeUndefined();
    expect(termsFromAnswer(get({}), { seconds: 300, refresher: 'us', minSe: 300 })).toEqual({ seconds: 300, refresher: 'us', minSe: 300 });
    expect(termsFromAnswer(get({ 'session-expires': 'soon' }), undefined)).toBeUndefined();
  });

  it('read from a request of the bot: uac is the bot', () => {
    expect(termsFromRequest(get({ 'session-expires': '600;refresher=uac' }), undefined)).toEqual({ seconds: 600, refresher: 'them' });
    expect(termsFromRequest(get({ 'session-expires': '600;refresher=uas' }), undefined)).toEqual({ seconds: 600, refresher: 'us' });
    expect(termsFromRequest(get({}), { seconds: 90, refresher: 'us' })).toBeUndefined();
  });

  it('refresh at half the interval; expire at the interval minus min(32 s, a third)', () => {
    expect(dueInMs({ seconds: 1800, refresher: 'us' }, 1000)).toBe(900_000);
    expect(dueInMs({ seconds: 1800, refresher: 'them' }, 1000)).toBe(1_768_000);
    expect(dueInMs({ seconds: 90, refresher: 'them' }, 1000)).toBe(60_000);
  });
});

describe('EmbeddedSipBackend session timers (RFC 4028)', () => {
  it('offers Supported: timer and asks for no session timer itself', async () => {
    const s = await setup();
    s.backend.invite(s.request);
    const invite = await s.uas.next('INVITE');
    expect(invite.message.sip.get('supported')).toBe('timer');
    expect(invite.message.sip.get('session-expires')).toBeUndefined();
  });

  it('refresher=uac and the bot allows UPDATE: we refresh with UPDATE at half the interval, again after each 200', async () => {
    const s = await setup();
    const { leg } = await answered(s, ['Session-Expires: 2;refresher=uac', 'Allow: INVITE, ACK, BYE, UPDATE']);
    const t0 = Date.now();
    const first = await s.uas.next('UPDATE');
    expect(first.at - t0).toBeGreaterThanOrEqual(80);
    expect(first.message.sip.get('session-expires')).toBe('2;refresher=uac');
    expect(first.message.sip.get('supported')).toBe('timer');
    expect(first.message.sip.body).toBe('');
    s.uas.reply(first, 200, 'OK', { headers: ['Session-Expires: 2;refresher=uac', 'Require: timer'] });
    const second = await s.uas.next('UPDATE');
    expect(second.message.cseq.seq).toBe(first.message.cseq.seq + 1);
    s.uas.reply(second, 200, 'OK', { headers: ['Session-Expires: 2;refresher=uac'] });
    s.uas.reply(await s.uas.next('UPDATE'), 200, 'OK', { headers: ['Session-Expires: 2;refresher=uac'] });
    expect(s.delegate.onEnded).not.toHaveBeenCalled();
    const bye = leg.hangup();
    s.uas.reply(await s.uas.next('BYE'), 200, 'OK');
    await bye;
    await new Promise((r) => setTimeout(r, 3 * SECOND_MS));
    // hangup stopped the timer: three refreshes (by CSeq; retransmissions aside)
    expect(s.uas.cseqs('UPDATE')).toHaveLength(3);
  });

  it('refresher=uac without UPDATE in Allow: a re-INVITE with our SDP, its 2xx ACKed', async () => {
    const s = await setup();
    await answered(s, ['Session-Expires: 2;refresher=uac', 'Allow: INVITE, ACK, BYE']);
    const reinvite = await s.uas.next('INVITE');
    expect(reinvite.message.sip.body).toBe(OUR_SDP);
    expect(reinvite.message.sip.get('session-expires')).toBe('2;refresher=uac');
    s.uas.reply(reinvite, 200, 'OK', { body: BOT_SDP, headers: ['Session-Expires: 2;refresher=uac'] });
    const ack = await s.uas.next('ACK');
    expect(ack.message.cseq).toEqual({ seq: reinvite.message.cseq.seq, method: 'ACK' });
    expect(s.delegate.onRemoteSdp).not.toHaveBeenCalled();
  });

  it('UPDATE refused with 501: the refresh is sent again as a re-INVITE', async () => {
    const s = await setup();
    await answered(s, ['Session-Expires: 2;refresher=uac', 'Allow: INVITE, ACK, BYE, UPDATE']);
    s.uas.reply(await s.uas.next('UPDATE'), 501, 'Not Implemented');
    const reinvite = await s.uas.next('INVITE');
    expect(reinvite.message.sip.get('session-expires')).toBe('2;refresher=uac');
  });

  it('a refresh answered 481 ends the session: BYE, and onEnded(session-refresh-failed)', async () => {
    const s = await setup();
    await answered(s, ['Session-Expires: 2;refresher=uac', 'Allow: INVITE, ACK, BYE, UPDATE']);
    s.uas.reply(await s.uas.next('UPDATE'), 481, 'Call/Transaction Does Not Exist');
    const bye = await s.uas.next('BYE');
    s.uas.reply(bye, 200, 'OK');
    expect(s.delegate.onEnded).toHaveBeenCalledWith('session-refresh-failed');
    expect(s.delegate.onBye).not.toHaveBeenCalled();
    await noLeaks(s.backend);
  });

  it('refresher=uas and no refresh from the bot: BYE before expiry (Reason: session timer), onEnded(session-expired)', async () => {
    const s = await setup();
    const t0 = Date.now();
    await answered(s, ['Session-Expires: 3;refresher=uas']);
    const bye = await s.uas.next('BYE');
    // 3 s minus a third: 200 ms here
    expect(bye.at - t0).toBeGreaterThanOrEqual(180);
    expect(bye.message.sip.get('reason')).toBe('SIP ;cause=200 ;text="Session timer expired"');
    expect(s.delegate.onEnded).toHaveBeenCalledExactlyOnceWith('session-expired');
    s.uas.reply(bye, 200, 'OK');
    await noLeaks(s.backend);
  });

  it('without onEnded the expiry is reported as an onBye that carries no header', async () => {
    const s = await setup({ onEnded: undefined });
    delete (s.delegate as { onEnded?: unknown }).onEnded;
    await answered(s, ['Session-Expires: 2;refresher=uas']);
    s.uas.reply(await s.uas.next('BYE'), 200, 'OK');
    expect(s.delegate.onBye).toHaveBeenCalledTimes(1);
    const view = (s.delegate.onBye as ReturnType<typeof vi.fn>).mock.calls[0]![0] as { get(name: string): string | undefined };
    expect(view.get('reason')).toBeUndefined();
  });

  it('refresher=uas: the bot\'s refreshes are answered with their terms and keep the session up', async () => {
    const s = await setup();
    const { invite, leg } = await answered(s, ['Session-Expires: 3;refresher=uas']);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150)); // before the 200 ms expiry
      s.uas.requestInDialog(invite, 'UPDATE', { headers: ['Session-Expires: 3;refresher=uac', 'Supported: timer'] });
      const ok = await s.uas.next('200');
      expect(ok.message.sip.get('session-expires')).toBe('3;refresher=uac');
      expect(ok.message.sip.get('require')).toBe('timer');
    }
    expect(s.uas.count('BYE')).toBe(0);
    expect(s.delegate.onEnded).not.toHaveBeenCalled();
    const bye = leg.hangup();
    s.uas.reply(await s.uas.next('BYE'), 200, 'OK');
    await bye;
  });

  it('422 with Min-SE: the INVITE goes again (CSeq 2) asking for Min-SE; we then refresh at half of it', async () => {
    const s = await setup();
    const outgoing = s.backend.invite(s.request);
    const first = await s.uas.next('INVITE');
    s.uas.reply(first, 422, 'Session Interval Too Small', { headers: ['Min-SE: 2'] });
    await s.uas.next('ACK');
    const second = await s.uas.nextAfter('INVITE', first);
    expect(second.message.callId).toBe(first.message.callId);
    expect(second.message.fromTag).toBe(first.message.fromTag);
    expect(second.message.cseq).toEqual({ seq: 2, method: 'INVITE' });
    expect(second.message.branch).not.toBe(first.message.branch);
    expect(second.message.sip.get('session-expires')).toBe('2;refresher=uac');
    expect(second.message.sip.get('min-se')).toBe('2');
    expect(second.message.sip.body).toBe(OUR_SDP);
    // a UAS without session-timer support: no Session-Expires in its 2xx; we refresh on the terms we asked
    s.uas.reply(second, 200, 'OK', { body: BOT_SDP, headers: ['Allow: INVITE, ACK, BYE, UPDATE'] });
    await s.uas.next('ACK');
    await outgoing.answered;
    const update = await s.uas.next('UPDATE');
    expect(update.message.sip.get('session-expires')).toBe('2;refresher=uac');
    expect(update.message.sip.get('min-se')).toBe('2');
  });

  it('a second 422 is a failure (sip-422)', async () => {
    const s = await setup();
    const outgoing = s.backend.invite(s.request);
    s.uas.reply(await s.uas.next('INVITE'), 422, 'Session Interval Too Small', { headers: ['Min-SE: 2'] });
    s.uas.reply(await s.uas.next('INVITE'), 422, 'Session Interval Too Small', { headers: ['Min-SE: 4'] });
    await expect(outgoing.answered).rejects.toMatchObject({ cause: 'sip-422' });
  });
});
