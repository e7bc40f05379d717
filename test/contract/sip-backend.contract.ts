import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import type { InviteRequest, LegDelegate, OutgoingInvite, SipBackend } from '../../plugin/sip/backend.js';
import { digestVerifies } from '../support/digest-check.js';
import { collected } from '../support/gc.js';
import { delegateMock, failureOf, sdpOffer } from '../unit/plugin/sip/backend-fixture.js';

/**
 * The SipBackend contract: what the call may rely on whichever adapter it has (plugin/sip/backend.ts). Each adapter's
 * test file calls `sipBackendContract` with a factory for a started backend and a scripted far end, the "bot",
 * that offers the same steps over whatever sits behind that adapter (a UDP peer, a fake drachtio-server).
 */

/** The INVITE as it reached the bot. */
export interface BotInvite {
  readonly callId: string;
  readonly sdp: string;
  header(name: string): string | undefined;
}

/** A scripted far end for one call at a time; every step waits until the backend has done its part. */
export interface ContractBot {
  /** where to send the INVITE, with an explicit transport */
  readonly requestUri: string;
  /** waits for the INVITE */
  invite(): Promise<BotInvite>;
  /** a provisional response; with `sdp`, as its body (early media: RFC 3960), typed `contentType` (application/sdp) */
  ring(status: number, sdp?: string, contentType?: string): void;
  /** 200 with SDP and any extra headers (Session-Expires …); resolves once the backend ACKed it */
  answer(sdp: string, headers?: Record<string, string>): Promise<void>;
  /** a final failure, with any extra headers (a challenge's WWW- or Proxy-Authenticate); resolves once it was ACKed */
  reject(status: number, reason: string, headers?: Record<string, string>): Promise<void>;
  /** waits for a CANCEL of the INVITE and answers it 200 (the INVITE stays open) */
  cancelArrives(): Promise<void>;
  /** 487 to the canceled INVITE; resolves once it was ACKed */
  terminate(): Promise<void>;
  /** the bot hangs up; resolves with the status the backend answered */
  bye(headers: Record<string, string>): Promise<number>;
  /**
   * the bot hangs up as a bot that keeps no connection open does: its BYE goes to our Contact as RFC 3263 §4.1
   * resolves it (its `;transport=`, or UDP), on a new TCP/TLS connection; resolves with the status the backend
   * answered, or undefined when the BYE never reached it
   */
  byeToContact(headers: Record<string, string>): Promise<number | undefined>;
  /**
   * the bot answered with `Session-Expires: …;refresher=uas` and never refreshes: waits for the BYE that ends the
   * session on the backend's side (RFC 4028 §10), answers it 200 and hands over its headers
   */
  sessionExpires(): Promise<{ get(name: string): string | undefined }>;
  /** a request-URI the backend cannot deliver to (no such host, or a connection refused) */
  readonly unreachableUri: string;
  /** the bot re-INVITEs with a new offer and ACKs the answer; resolves with that answer */
  reinvite(sdp: string): Promise<{ status: number; body: string }>;
  /**
   * the bot sends REFER with these headers; resolves with the status of the backend's final answer and, when it was
   * a 2xx, the NOTIFY that followed it (answered 200 by the bot)
   */
  refer(headers: Record<string, string>): Promise<{ status: number; notify?: { get(name: string): string | undefined; body: string } }>;
  /** waits for the backend's BYE, answers 200 and hands over its headers */
  expectBye(timeoutMs?: number): Promise<{ get(name: string): string | undefined }>;
  /** how many requests of `method` reached the bot so far */
  count(method: string): number;
  /**
   * Someone on the path who read the dialog's Call-ID and tags sends `method` in it, posing as the bot, from an address
   * that is not the bot's (issue 13). Resolves with the status of the backend's final answer, or undefined when none
   * came. Optional: a fake that cannot send from another source yet leaves it out, and those cases are skipped.
   */
  strangerSends?(method: 'BYE' | 'REFER' | 'INVITE' | 'OPTIONS', opts?: { headers?: Record<string, string>; sdp?: string; cseq?: number }): Promise<number | undefined>;
}

export interface ContractSetup {
  backend: SipBackend;
  bot: ContractBot;
  /** after this, the backend cannot place calls: stopped, or its drachtio-server gone */
  makeUnavailable(): Promise<void>;
  dispose(): Promise<void>;
}

export const OUR_SDP = sdpOffer(20000);
export const BOT_SDP = sdpOffer(16000, 'bot');
const MOVED_BOT_SDP = sdpOffer(16002, 'bot').replace('o=bot 1 1', 'o=bot 1 2');
const log = pino({ level: process.env.SIP_TEST_LOG ?? 'silent' });

type Delegate = ReturnType<typeof delegateMock>;

export function sipBackendContract(adapter: string, factory: () => Promise<ContractSetup>): void {
  describe(`SipBackend contract: ${adapter}`, () => {
    const setups: ContractSetup[] = [];
    afterEach(async () => {
      for (const setup of setups.splice(0)) await setup.dispose();
    });

    async function call(): Promise<ContractSetup & { delegate: Delegate; request: InviteRequest }> {
      const setup = await factory();
      setups.push(setup);
      const delegate: Delegate = delegateMock();
      const request: InviteRequest = {
        requestUri: setup.bot.requestUri,
        fromUser: 'talkdesk',
        headers: { 'X-Talkdesk-Call-Sid': 'CA123' },
        sdp: OUR_SDP,
        log,
        delegate,
      };
      return { ...setup, delegate, request };
    }

    /** A call the bot has answered: its leg, with the setup that made it. */
    async function answeredCall(): Promise<Awaited<ReturnType<typeof call>> & { leg: Awaited<OutgoingInvite['answered']> }> {
      const setup = await call();
      const outgoing = setup.backend.invite(setup.request);
      await setup.bot.invite();
      await setup.bot.answer(BOT_SDP);
      return { ...setup, leg: await outgoing.answered };
    }


    it('an answered INVITE becomes a leg with the Call-ID and the answer SDP; the bot saw our SDP and headers', async () => {
      const { backend, bot, request } = await call();
      const outgoing = backend.invite(request);
      const invite = await bot.invite();
      expect(invite.sdp).toBe(OUR_SDP);
      expect(invite.header('x-talkdesk-call-sid')).toBe('CA123');
      await bot.answer(BOT_SDP);
      const leg = await outgoing.answered;
      expect(leg.callId).toBe(invite.callId);
      expect(leg.remoteSdp).toBe(BOT_SDP);
      await Promise.all([leg.hangup(), bot.expectBye()]);
    });

    it('a 180 is reported as progress(180) before the answer', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      bot.ring(180);
      await vi.waitFor(() => expect(delegate.onProgress).toHaveBeenCalledWith(180));
      await bot.answer(BOT_SDP);
      await Promise.all([(await outgoing.answered).hangup(), bot.expectBye()]);
      expect(delegate.onProgress).toHaveBeenCalledTimes(1);
    });

    it('a 183 with SDP is reported as progress(183, sdp), then the 2xx answer stands on its own', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      bot.ring(183, BOT_SDP);
      await vi.waitFor(() => expect(delegate.onProgress).toHaveBeenCalledWith(183, BOT_SDP));
      await bot.answer(MOVED_BOT_SDP);
      const leg = await outgoing.answered;
      expect(leg.remoteSdp).toBe(MOVED_BOT_SDP);
      expect(delegate.onProgress).toHaveBeenCalledTimes(1);
      await Promise.all([leg.hangup(), bot.expectBye()]);
    });

    it('a 180 then a 183, both with SDP, are each reported with their own SDP, in order', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      bot.ring(180, BOT_SDP);
      await vi.waitFor(() => expect(delegate.onProgress).toHaveBeenCalledTimes(1));
      bot.ring(183, MOVED_BOT_SDP);
      await vi.waitFor(() => expect(delegate.onProgress).toHaveBeenCalledTimes(2));
      expect(delegate.onProgress.mock.calls).toEqual([[180, BOT_SDP], [183, MOVED_BOT_SDP]]);
      await bot.answer(MOVED_BOT_SDP);
      await Promise.all([(await outgoing.answered).hangup(), bot.expectBye()]);
    });

    it('a 183 whose body is not typed application/sdp is reported as progress(183) alone', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      bot.ring(183, BOT_SDP, 'text/plain');
      await vi.waitFor(() => expect(delegate.onProgress).toHaveBeenCalledTimes(1));
      expect(delegate.onProgress.mock.calls).toEqual([[183]]);
      await bot.answer(BOT_SDP);
      await Promise.all([(await outgoing.answered).hangup(), bot.expectBye()]);
    });

    it('a bot BYE with escalation headers reaches onBye once, both headers readable case-insensitively', async () => {
      const { bot, delegate, leg } = await answeredCall();
      const status = await bot.bye({ 'X-Escalate': 'true', 'X-Escalation-Data': '{"queue":"billing"}' });
      expect(status).toBe(200);
      await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
      const bye = delegate.onBye.mock.calls[0]![0];
      expect(bye.get('x-escalate')).toBe('true');
      expect(bye.get('X-ESCALATION-DATA')).toBe('{"queue":"billing"}');
      expect(bye.has('X-Escalation-Data')).toBe(true);
      await leg.hangup(); // after the bot's BYE: nothing to send, resolves
      expect(bot.count('BYE')).toBe(0);
    });

    it('a bot BYE sent to our Contact on a new connection (RFC 3263) reaches onBye with its headers', async () => {
      const { bot, delegate, leg } = await answeredCall();
      expect(await bot.byeToContact({ 'X-Escalate': 'true', 'X-Escalation-Data': '{"queue":"billing"}' })).toBe(200);
      await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
      expect(delegate.onBye.mock.calls[0]![0].get('x-escalation-data')).toBe('{"queue":"billing"}');
      await leg.hangup();
      expect(bot.count('BYE')).toBe(0);
    });

    it('a session the bot never refreshes is ended for it: the bot gets a BYE saying so with none of the call\'s headers; the call hears onEnded(session-expired) only', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      await bot.answer(BOT_SDP, { 'Session-Expires': '3;refresher=uas' });
      const leg = await outgoing.answered;
      const bye = await bot.sessionExpires();
      expect(bye.get('reason')).toMatch(/^SIP\s*;\s*cause=200\s*;\s*text="Session timer expired"$/);
      expect(bye.get('x-talkdesk-call-sid')).toBeUndefined();
      await vi.waitFor(() => expect(delegate.onEnded).toHaveBeenCalledExactlyOnceWith('session-expired'));
      expect(delegate.onBye).not.toHaveBeenCalled();
      await leg.hangup(); // the dialog is over: nothing more to send
      expect(bot.count('BYE')).toBe(1);
    });

    it('an INVITE the backend cannot deliver rejects `transport`, never as an answer of the bot', async () => {
      const { backend, bot, request } = await call();
      const failure = await failureOf(backend.invite({ ...request, requestUri: bot.unreachableUri }).answered);
      expect(failure.kind).toBe('transport');
      expect(bot.count('INVITE')).toBe(0);
    });

    it('a bot REFER: 202, then one final NOTIFY (sipfrag 200 OK), then onRefer with its headers; the leg stays ours to BYE', async () => {
      const { bot, delegate, leg } = await answeredCall();
      const { status, notify } = await bot.refer({
        'Refer-To': '<sip:billing@agents.example.com?X-Queue=priority>',
        'Referred-By': '<sip:bot@ccai.example.com>',
        'X-Escalation-Data': '{"queue":"billing"}',
      });
      expect(status).toBe(202);
      expect(notify?.get('event')).toBe('refer');
      expect(notify?.get('subscription-state')).toMatch(/^terminated\b/);
      expect(notify?.get('content-type')).toMatch(/^message\/sipfrag\b/);
      expect(notify?.get('contact')).toBeTruthy();
      expect(notify?.body).toMatch(/^SIP\/2\.0 200 OK\r?\n?$/);
      await vi.waitFor(() => expect(delegate.onRefer).toHaveBeenCalledTimes(1));
      const refer = delegate.onRefer.mock.calls[0]![0];
      expect(refer.get('refer-to')).toBe('<sip:billing@agents.example.com?X-Queue=priority>');
      expect(refer.get('X-ESCALATION-DATA')).toBe('{"queue":"billing"}');
      expect(delegate.onBye).not.toHaveBeenCalled();
      const bye = leg.hangup({ 'X-Reason': 'bot-refer' });
      expect((await bot.expectBye()).get('x-reason')).toBe('bot-refer');
      await bye;
    });

    it('a REFER without Refer-To gets 400 and is not reported', async () => {
      const { bot, delegate, leg } = await answeredCall();
      expect((await bot.refer({ 'X-Escalate': 'true' })).status).toBe(400);
      expect(delegate.onRefer).not.toHaveBeenCalled();
      expect(bot.count('NOTIFY')).toBe(0);
      await Promise.all([leg.hangup(), bot.expectBye()]);
    });

    it('a 486 rejects `answered` with SipFailure rejected 486 (cause sip-486)', async () => {
      const { backend, bot, request } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      await bot.reject(486, 'Busy Here');
      const failure = await failureOf(outgoing.answered);
      expect(failure.kind).toBe('rejected');
      expect(failure.status).toBe(486);
      expect(failure.cause).toBe('sip-486');
    });

    it('a 407 is answered with the credentials (MD5, qop=auth: what both adapters do), same Call-ID and From tag; the 2xx is the call', async () => {
      const { backend, bot, request } = await call();
      const outgoing = backend.invite({ ...request, credentials: { username: 'gw', password: 's3cret' } });
      const first = await bot.invite();
      await bot.reject(407, 'Proxy Authentication Required', { 'Proxy-Authenticate': 'Digest realm="ccai.test", nonce="n1", qop="auth", algorithm=MD5' });
      const second = await bot.invite();
      expect(second.callId).toBe(first.callId);
      expect(/;tag=([^;]+)/.exec(second.header('from')!)?.[1]).toBe(/;tag=([^;]+)/.exec(first.header('from')!)?.[1]);
      const auth = second.header('proxy-authorization')!;
      expect(auth).toMatch(/^Digest /);
      expect(digestVerifies(auth, 'INVITE', 's3cret')).toBe(true);
      await bot.answer(BOT_SDP);
      expect((await outgoing.answered).remoteSdp).toBe(BOT_SDP);
    });

    it('a 401 after the credentials went out rejects `answered` as sip-auth-failed; without credentials a 401 is sip-401', async () => {
      const first = await call();
      const withCredentials = first.backend.invite({ ...first.request, credentials: { username: 'gw', password: 'wrong' } });
      await first.bot.invite();
      await first.bot.reject(401, 'Unauthorized', { 'WWW-Authenticate': 'Digest realm="ccai.test", nonce="n1", qop="auth"' });
      await first.bot.invite();
      await first.bot.reject(401, 'Unauthorized', { 'WWW-Authenticate': 'Digest realm="ccai.test", nonce="n2", qop="auth"' });
      expect((await failureOf(withCredentials.answered)).cause).toBe('sip-auth-failed');
      expect(first.bot.count('INVITE')).toBe(2);

      const second = await call();
      const without = second.backend.invite(second.request);
      await second.bot.invite();
      await second.bot.reject(401, 'Unauthorized', { 'WWW-Authenticate': 'Digest realm="ccai.test", nonce="n1"' });
      expect((await failureOf(without.answered)).cause).toBe('sip-401');
    });

    it('cancel() while ringing rejects `canceled` at once and the CANCEL reaches the bot', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      bot.ring(180);
      await vi.waitFor(() => expect(delegate.onProgress).toHaveBeenCalledWith(180));
      outgoing.cancel();
      expect((await failureOf(outgoing.answered)).kind).toBe('canceled');
      await bot.cancelArrives();
      await bot.terminate();
      outgoing.cancel(); // idempotent
    });

    it('cancel() before any provisional: the CANCEL goes once the bot rings, and a racing 2xx is ACKed and BYEd', async () => {
      const { backend, bot, request } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      outgoing.cancel();
      expect((await failureOf(outgoing.answered)).kind).toBe('canceled');
      expect(bot.count('CANCEL')).toBe(0); // RFC 3261 §9.1: not before a provisional response
      bot.ring(180);
      await bot.cancelArrives();
      await bot.answer(BOT_SDP); // the 2xx crossed the CANCEL
      await bot.expectBye();
    });

    it('hangup(headers) sends one BYE carrying the headers; a second hangup sends nothing and never rejects', async () => {
      const { bot, leg } = await answeredCall();
      const first = leg.hangup({ 'X-Reason': 'talkdesk-stop' });
      const bye = await bot.expectBye();
      expect(bye.get('x-reason')).toBe('talkdesk-stop');
      await first;
      await expect(leg.hangup({ 'X-Reason': 'again' })).resolves.toBeUndefined();
      expect(bot.count('BYE')).toBe(1);
    });

    it('a re-INVITE reports the new remote SDP and is answered 200 with our SDP', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      await bot.answer(BOT_SDP);
      const leg = await outgoing.answered;
      const answer = await bot.reinvite(MOVED_BOT_SDP);
      expect(answer.status).toBe(200);
      expect(answer.body).toBe(OUR_SDP);
      await vi.waitFor(() => expect(delegate.onRemoteSdp).toHaveBeenCalledWith(MOVED_BOT_SDP));
      await Promise.all([leg.hangup(), bot.expectBye()]);
    });

    // What outlives a call in the backend (a transaction absorbing retransmissions for up to 32 s: RFC 3261 Timers D,
    // J, K, M) must not hold the call: at 50 calls a second that is 1,600 calls' memory. The call is its delegate here.
    const endings: Array<[string, (bot: ContractBot, outgoing: OutgoingInvite) => Promise<void>]> = [
      ['the bot hangs up', async (bot, outgoing) => {
        await bot.answer(BOT_SDP);
        await outgoing.answered;
        await bot.bye({});
      }],
      ['we hang up', async (bot, outgoing) => {
        await bot.answer(BOT_SDP);
        const leg = await outgoing.answered;
        await Promise.all([leg.hangup(), bot.expectBye()]);
      }],
      ['the bot rejects the INVITE', async (bot, outgoing) => {
        await bot.reject(486, 'Busy Here');
        await outgoing.answered.catch(() => undefined);
      }],
      ['we cancel it while it rings', async (bot, outgoing) => {
        bot.ring(180);
        outgoing.cancel();
        await bot.cancelArrives();
        await bot.terminate();
      }],
    ];
    it.each(endings)('lets go of the call once it ended (%s), while its transactions still linger', async (_name, end) => {
      const setup = await factory();
      setups.push(setup);
      const { backend, bot } = setup;
      // in a function of its own, so that nothing of the call stays on this stack frame
      const ref = await (async () => {
        const delegate: LegDelegate = { onBye: () => undefined, onRemoteSdp: () => undefined, onRefer: () => undefined };
        const outgoing = backend.invite({ requestUri: bot.requestUri, fromUser: 'talkdesk', headers: {}, sdp: OUR_SDP, log, delegate });
        await bot.invite();
        await end(bot, outgoing);
        return new WeakRef(delegate);
      })();
      expect(await collected(ref)).toBe(true);
    });

    it('once hangup() is called the call hears nothing more: a re-INVITE crossing our BYE is answered, not reported', async () => {
      const { backend, bot, request, delegate } = await call();
      const outgoing = backend.invite(request);
      await bot.invite();
      await bot.answer(BOT_SDP);
      const leg = await outgoing.answered;
      const hangup = leg.hangup();
      const answer = await bot.reinvite(MOVED_BOT_SDP);
      await bot.expectBye();
      await hangup;
      expect(answer.status).toBe(200);
      expect(delegate.onRemoteSdp).not.toHaveBeenCalled();
    });

    // Issue 13: only the dialog's peer may act in it (plugin/sip/dialog-peer.ts). A stranger is refused (403, or no
    // answer at all, never a 2xx) before the dialog's CSeq moves, and the call hears nothing of it.
    const REFUSED = [403, undefined];
    const ATTACKER_QUEUE = { 'X-Escalate': 'true', 'X-Escalation-Data': '{"queue":"attacker-queue"}' };
    async function answeredWithStranger(ctx: { skip: () => void }) {
      const setup = await call();
      if (!setup.bot.strangerSends) ctx.skip();
      const outgoing = setup.backend.invite(setup.request);
      await setup.bot.invite();
      await setup.bot.answer(BOT_SDP);
      return { ...setup, leg: await outgoing.answered, strangerSends: setup.bot.strangerSends!.bind(setup.bot) };
    }

    it("a stranger's BYE with X-Escalation-Data is refused and not reported; the bot's own BYE still is", async (ctx) => {
      const { bot, delegate, strangerSends } = await answeredWithStranger(ctx);
      expect(REFUSED).toContain(await strangerSends('BYE', { headers: ATTACKER_QUEUE }));
      expect(delegate.onBye).not.toHaveBeenCalled();
      expect(await bot.bye({ 'X-Escalation-Data': '{"queue":"billing"}' })).toBe(200);
      await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
      expect(delegate.onBye.mock.calls[0]![0].get('x-escalation-data')).toBe('{"queue":"billing"}');
    });

    it("a stranger's REFER is refused, not reported, and gets no NOTIFY", async (ctx) => {
      const { bot, delegate, leg, strangerSends } = await answeredWithStranger(ctx);
      expect(REFUSED).toContain(await strangerSends('REFER', { headers: { 'Refer-To': '<sip:attacker@203.0.113.9>', ...ATTACKER_QUEUE } }));
      expect(delegate.onRefer).not.toHaveBeenCalled();
      expect(bot.count('NOTIFY')).toBe(0);
      await Promise.all([leg.hangup(), bot.expectBye()]);
    });

    it("a stranger's re-INVITE is refused and its SDP is not reported", async (ctx) => {
      const { bot, delegate, leg, strangerSends } = await answeredWithStranger(ctx);
      expect(REFUSED).toContain(await strangerSends('INVITE', { sdp: MOVED_BOT_SDP }));
      expect(delegate.onRemoteSdp).not.toHaveBeenCalled();
      await Promise.all([leg.hangup(), bot.expectBye()]);
    });

    it("a stranger's OPTIONS with CSeq 2^31-1 is refused and leaves the bot's BYE in order", async (ctx) => {
      const { bot, delegate, strangerSends } = await answeredWithStranger(ctx);
      expect(REFUSED).toContain(await strangerSends('OPTIONS', { cseq: 2147483647 }));
      expect(await bot.bye({ 'X-Escalation-Data': '{"queue":"billing"}' })).toBe(200);
      await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
    });

    it('an INVITE while the backend is unavailable rejects `unavailable` and sends nothing', async () => {
      const { backend, bot, request, makeUnavailable } = await call();
      await makeUnavailable();
      const outgoing = backend.invite(request);
      expect((await failureOf(outgoing.answered)).kind).toBe('unavailable');
      outgoing.cancel();
      expect(bot.count('INVITE')).toBe(0);
    });
  });
}
