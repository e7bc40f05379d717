import type { Logger } from 'pino';
import { ALLOW, DETACHED, type LegDelegate, type SipLeg, type SipMessageView } from '../backend.js';
import { REFER_ACCEPTED, REFER_WHILE_ENDING, REFER_WITHOUT_ONE_TARGET, referNotify, singleReferTo } from '../refer.js';
import { callDelegate } from '../delegate-guard.js';
import { FOREIGN_SOURCE_RESPONSE, type DialogPeer } from '../dialog-peer.js';
import { answerChallenge, type ConfiguredCredentials } from '../digest.js';
import type { Dialog } from './dialog.js';
import { DropLog } from './drop-log.js';
import { newBranch } from './ids.js';
import { hasSdp, type IncomingMessage } from './message.js';
import { extraHeaders, type Header, type OutgoingRequest, type ResponseSpec } from './message-builder.js';
import { InviteServerTransaction, type ServerTransaction } from './server-transactions.js';
import type { DialogUser, SipStack } from './stack.js';
import { SessionTimer, termsFromAnswer, termsFromRequest, readMinSe, type SessionTerms } from './session-timer.js';
import type { Destination } from './transport.js';

export interface EmbeddedLegOptions {
  /** our Contact, as in the INVITE: repeated in answers to target refreshes (§12.2.2) */
  contact: string;
  /** our SDP: the offer of the INVITE, re-sent in answers to re-INVITE/UPDATE */
  localSdp: string;
  /** the SDP of the 2xx */
  remoteSdp: string;
  /** RFC 4028 terms the 2xx set, if any */
  session?: SessionTerms;
  /** the hosts that may act in the dialog (../dialog-peer.ts); a target refresh from one of them adds its host */
  peer: DialogPeer;
  /** the bot's 2xx listed UPDATE in Allow: session refreshes go as UPDATE, else as re-INVITE (RFC 4028 §7.4) */
  peerAllowsUpdate: boolean;
  delegate: LegDelegate;
  log: Logger;
  /** what a challenge to our BYE is answered with (the INVITE's credentials) */
  credentials?: ConfiguredCredentials;
}

/** what a BYE of ours says when the session timer ran out (RFC 3326 Reason, as drachtio-server words it) */
const SESSION_EXPIRED_REASON = 'SIP ;cause=200 ;text="Session timer expired"';
/** what a delegate without onEnded hears: a BYE view with nothing an escalation rule could read */
const NO_HEADERS: SipMessageView = { headers: {}, body: '', get: () => undefined, has: () => false };

/**
 * A confirmed call leg: sends the ACK for its 2xx, answers the bot's requests in the dialog, and ends with a BYE
 * either way. Leaves the dialog table on the bot's BYE or once our BYE is answered or times out (Timer F).
 */
export class EmbeddedLeg implements SipLeg, DialogUser {
  /** `ending`: our BYE is out; a BYE from the bot that crosses it is answered but not reported (the call is ending) */
  private phase: 'up' | 'ending' | 'ended' = 'up';
  private hangupDone: Promise<void> | undefined;
  private ack: OutgoingRequest | undefined;
  private nextHop: { uri: string; destination: Promise<Destination> } | undefined;
  private resolvedPeer: Destination | undefined;
  /** our 2xx to a re-INVITE, re-sent by its transaction until the ACK (§13.3.1.4) */
  private unackedReinvite: { seq: number; txn: InviteServerTransaction } | undefined;
  /** REFERs accepted so far: the NOTIFY of a second one carries `id` */
  private refers = 0;
  /** RFC 4028: our next refresh, or the expiry when the bot refreshes */
  private readonly session: SessionTimer;
  /** a refresh of ours is in flight */
  private refreshing = false;
  private refreshWithUpdate: boolean;
  /** the call's, while the leg is up; DETACHED once it is ending: the call hears nothing more and may be collected */
  private delegate: LegDelegate;
  private readonly opts: Omit<EmbeddedLegOptions, 'delegate'>;
  /** requests and ACKs from strangers: one log line per interval per call, however many come */
  private readonly foreign: DropLog;

  constructor(
    private readonly stack: SipStack,
    readonly dialog: Dialog,
    { delegate, ...opts }: EmbeddedLegOptions,
  ) {
    this.session = new SessionTimer(stack.sessionSecondMs, (terms) => this.onSessionDue(terms));
    this.refreshWithUpdate = opts.peerAllowsUpdate;
    this.delegate = delegate;
    this.opts = opts;
    this.foreign = new DropLog(opts.log, 'in-dialog request from a source that is not the dialog\'s peer refused');
  }

  /** The call has the leg: start the session timer the 2xx asked for (RFC 4028 §7.2), if any. */
  startSession(): void {
    if (this.phase !== 'up' || !this.opts.session) return;
    this.armSession(this.opts.session);
  }

  get callId(): string {
    return this.dialog.callId;
  }

  get remoteSdp(): string {
    return this.opts.remoteSdp;
  }

  get peer(): Destination | undefined {
    return this.resolvedPeer;
  }

  /**
   * §13.2.2.4: ACK the 2xx that created the dialog; called again for every retransmission of that 2xx, it re-sends
   * the same ACK. Resolves false when it could not be sent.
   */
  async acknowledge(inviteSeq: number): Promise<boolean> {
    this.ack ??= this.dialog.createRequest('ACK', { via: this.stack.via(newBranch()), seq: inviteSeq });
    const ack = this.ack;
    try {
      return await this.stack.sendStateless(ack, await this.destination(), this.opts.log);
    } catch (err) {
      this.opts.log.warn({ err }, 'ACK not sent');
      return false;
    }
  }

  hangup(headers: Record<string, string> = {}): Promise<void> {
    this.hangupDone ??= this.bye(headers);
    return this.hangupDone;
  }

  /** The stack stops (backend stop): no timer of this leg fires any more, nothing more is sent. */
  dispose(): void {
    this.leave('ended');
  }

  /** Leaves the dialog table without a BYE: the dialog is over (BYE received) or was never usable. */
  end(): void {
    this.leave('ended');
    this.stack.removeDialog(this);
  }

  private leave(phase: 'ending' | 'ended'): void {
    this.phase = phase;
    this.session.stop();
    this.delegate = DETACHED;
  }

  receiveRequest(request: IncomingMessage, txn: ServerTransaction): void {
    const { sip } = request;
    const { delegate } = this;
    const { log } = this.opts;
    // before the CSeq moves: a stranger's huge CSeq would otherwise make the bot's own BYE "out of order"
    if (!this.fromPeer(request)) {
      txn.respond(FOREIGN_SOURCE_RESPONSE);
      // Sent once and forgotten: a 403 to a re-INVITE re-sent on Timer G until an ACK that never comes would reflect
      // 11 responses at a spoofed source, and a stranger's flood must not hold a transaction (or its TCP connection)
      // for Timer J. A retransmission is a new request and gets its own single 403.
      txn.dispose();
      return;
    }
    if (!this.dialog.acceptRemoteSeq(request)) {
      txn.respond({ status: 500, reason: 'CSeq Out Of Order' });
      return;
    }
    switch (sip.method) {
      case 'BYE': {
        // §15.1.2: answer 200, the dialog is over
        txn.respond({ status: 200, reason: 'OK' });
        const reported = this.phase === 'up';
        this.end();
        log.info({ reported }, 'BYE received');
        if (reported) callDelegate(log, 'onBye', () => delegate.onBye(sip));
        return;
      }
      case 'OPTIONS':
        txn.respond({ status: 200, reason: 'OK', headers: [['Allow', ALLOW], ['Accept', 'application/sdp']] });
        return;
      case 'INFO':
        txn.respond({ status: 200, reason: 'OK' });
        callDelegate(log, 'onInfo', () => delegate.onInfo?.(sip));
        return;
      case 'INVITE':
      case 'UPDATE':
        this.answerSessionRefresh(request, txn);
        return;
      case 'REFER':
        this.acceptRefer(request, txn);
        return;
      default:
        txn.respond({ status: 501, reason: 'Not Implemented', headers: [['Allow', ALLOW]] });
    }
  }

  receiveAck(ack: IncomingMessage): void {
    if (!this.fromPeer(ack)) return; // an ACK has no response (§17.1.1.3): a stranger's is dropped
    if (this.unackedReinvite?.seq === ack.cseq.seq) {
      this.unackedReinvite.txn.receiveAck();
      this.unackedReinvite = undefined;
    }
    // the answer to the offer in our 2xx to an offerless re-INVITE (RFC 3261 §13.2.1, RFC 3264)
    if (hasSdp(ack.sip)) callDelegate(this.opts.log, 'onRemoteSdp', () => this.delegate.onRemoteSdp(ack.sip.body));
  }

  /** Whether the request came from one of the dialog's peer hosts or CCAI_SOURCE_ADDRESSES; a stranger is logged. */
  private fromPeer(request: IncomingMessage): boolean {
    const { source } = request;
    if (this.opts.peer.entitles(source?.host)) return true;
    this.foreign.note(request.sip.method === 'ACK' ? 'ACK dropped' : '403', {
      method: request.sip.method,
      source: source === undefined ? undefined : `${source.host}:${source.port}`,
      peer: this.opts.peer.addresses,
    });
    return false;
  }

  /**
   * re-INVITE (§14.2) or UPDATE (RFC 3311): refresh the remote target, answer 200 with our unchanged SDP, report
   * the bot's new SDP. A re-INVITE without an offer gets our SDP as the offer (its answer comes in the ACK); an
   * UPDATE without an offer only refreshes the dialog.
   */
  private answerSessionRefresh(request: IncomingMessage, txn: ServerTransaction): void {
    const { sip } = request;
    this.dialog.refreshTarget(request);
    this.learnPeerHosts();
    const offer = hasSdp(sip) ? sip.body : undefined;
    const headers: Header[] = [['Contact', this.opts.contact], ['Allow', ALLOW]];
    // RFC 4028 §9: a refresh with Session-Expires gets its terms back, refresher named from the bot's side
    const get = (name: string) => sip.get(name);
    const terms = termsFromRequest(get, this.session.terms);
    if (terms) {
      headers.push(['Session-Expires', `${terms.seconds};refresher=${terms.refresher === 'them' ? 'uac' : 'uas'}`]);
      if (/\btimer\b/i.test(sip.get('supported') ?? sip.get('k') ?? '')) headers.push(['Require', 'timer']);
    }
    const withSdp = offer !== undefined || sip.method === 'INVITE';
    const response: ResponseSpec = withSdp
      ? { status: 200, reason: 'OK', headers: [...headers, ['Content-Type', 'application/sdp']], body: this.opts.localSdp }
      : { status: 200, reason: 'OK', headers };
    txn.respond(response);
    if (txn instanceof InviteServerTransaction) this.unackedReinvite = { seq: request.cseq.seq, txn };
    // any re-INVITE or UPDATE from the bot refreshes the session (§10), on the terms it carried or the current ones
    const refreshed = terms ?? this.session.terms;
    if (refreshed && this.phase === 'up') this.armSession(refreshed);
    if (offer !== undefined) callDelegate(this.opts.log, 'onRemoteSdp', () => this.delegate.onRemoteSdp(offer));
  }

  /**
   * REFER (RFC 3515): accepted with 202 and at once the final NOTIFY (`../refer.ts`), then reported. Not exactly one
   * Refer-To is a 400; after our BYE went out there is no call left to transfer (603).
   */
  private acceptRefer(request: IncomingMessage, txn: ServerTransaction): void {
    const { sip } = request;
    const { delegate } = this;
    const { log, contact } = this.opts;
    const referTo = singleReferTo((name) => sip.get(name));
    if (referTo === undefined) {
      txn.respond(REFER_WITHOUT_ONE_TARGET);
      return;
    }
    if (this.phase !== 'up') {
      txn.respond(REFER_WHILE_ENDING);
      return;
    }
    txn.respond({ ...REFER_ACCEPTED, headers: [['Contact', contact]] });
    const { headers, body } = referNotify(++this.refers, request.cseq.seq);
    const notify = this.dialog.createRequest('NOTIFY', {
      via: this.stack.via(newBranch()),
      seq: this.dialog.nextSeq(),
      headers: [['Contact', contact], ['User-Agent', this.stack.userAgent], ...Object.entries(headers)],
      body,
    });
    void this.sendInDialog(notify);
    log.info({ referTo }, 'REFER accepted');
    callDelegate(log, 'onRefer', () => delegate.onRefer(sip));
  }

  /** A request in the dialog whose answer only gets logged (NOTIFY). Never rejects. */
  private async sendInDialog(request: OutgoingRequest): Promise<void> {
    const { log } = this.opts;
    try {
      const destination = await this.destination();
      this.stack.startRequest(request, destination, log, {
        onResponse: (response) => log.debug({ method: request.method, status: response.sip.status }, 'in-dialog request answered'),
        onFailure: (failure) => log.warn({ method: request.method, reason: failure.message }, 'in-dialog request failed'),
      });
    } catch (err) {
      log.warn({ err, method: request.method }, 'in-dialog request not sent');
    }
  }

  private armSession(terms: SessionTerms): void {
    this.session.arm(terms);
    this.opts.log.debug({ seconds: terms.seconds, refresher: terms.refresher }, 'session timer armed');
  }

  /** §10: the refresher's half-interval, or the expiry of a session the bot did not refresh */
  private onSessionDue(terms: SessionTerms): void {
    if (this.phase !== 'up') return;
    try {
      if (terms.refresher === 'us') this.refreshSession(terms);
      else this.endSession('session-expired', `no session refresh from the bot within ${terms.seconds} s`);
    } catch (err) {
      // a timer callback: nothing may escape into the event loop
      this.opts.log.error({ err }, 'session timer handling failed');
    }
  }

  /**
   * RFC 4028 §7.4: refresh with UPDATE when the bot allows it, else with a re-INVITE offering our unchanged SDP
   * (its answer is not reported: our offer did not change). 422 raises the interval to the bot's Min-SE and
   * retries; 405/501 to an UPDATE retries as re-INVITE; a 401/407 is answered once with the credentials (§22.2);
   * 408, 481 or no answer ends the session (§10). Other failures keep the terms and try again at the next
   * half-interval.
   */
  private refreshSession(terms: SessionTerms, authorization?: readonly [string, string]): void {
    if (this.refreshing || this.phase !== 'up') return;
    this.refreshing = true;
    const { log, contact } = this.opts;
    const method = this.refreshWithUpdate ? 'UPDATE' : 'INVITE';
    const seq = this.dialog.nextSeq();
    const request = this.dialog.createRequest(method, {
      via: this.stack.via(newBranch()),
      seq,
      headers: [
        ['Contact', contact],
        ['Allow', ALLOW],
        ['Supported', 'timer'],
        ['Session-Expires', `${terms.seconds};refresher=uac`],
        ...(terms.minSe ? ([['Min-SE', String(terms.minSe)]] as Header[]) : []),
        ['User-Agent', this.stack.userAgent],
        ...(authorization ? [authorization] : []),
        ...(method === 'INVITE' ? ([['Content-Type', 'application/sdp']] as Header[]) : []),
      ],
      body: method === 'INVITE' ? this.opts.localSdp : '',
    });
    const challenged = { uri: request.uri, answered: authorization !== undefined };
    let ack: OutgoingRequest | undefined;
    let settled = false;
    const done = (next: () => void): void => {
      if (settled) return;
      settled = true;
      this.refreshing = false;
      if (this.phase === 'up') next();
    };
    void this.destination().then(
      (destination) => {
        const user = {
          onResponse: (response: IncomingMessage) => {
            const status = response.sip.status!;
            if (status < 200) return;
            if (status < 300 && method === 'INVITE') {
              // §13.2.2.4: every 2xx (retransmissions too) gets the ACK
              ack ??= this.dialog.createRequest('ACK', { via: this.stack.via(newBranch()), seq });
              void this.stack.sendStateless(ack, destination, log);
            }
            done(() => this.afterRefresh(method, status, response, terms, challenged));
          },
          onFailure: (failure: { message: string }) =>
            done(() => this.endSession('session-refresh-failed', `session refresh (${method}) failed: ${failure.message}`)),
        };
        if (method === 'INVITE') this.stack.startInvite(request, destination, log, user);
        else this.stack.startRequest(request, destination, log, user);
      },
      (err: unknown) => done(() => this.endSession('session-refresh-failed', `session refresh not sent: ${String(err)}`)),
    );
    log.debug({ method, seconds: terms.seconds }, 'session refresh sent');
  }

  private afterRefresh(
    method: string,
    status: number,
    response: IncomingMessage,
    terms: SessionTerms,
    challenged: { uri: string; answered: boolean },
  ): void {
    const { log, credentials } = this.opts;
    const get = (name: string) => response.sip.get(name);
    if (status < 300) {
      this.armSession(termsFromAnswer(get, terms) ?? terms);
      return;
    }
    const minSe = readMinSe(get);
    if (status === 422 && minSe !== undefined && minSe > terms.seconds) {
      this.refreshSession({ ...terms, seconds: minSe, minSe });
    } else if ((status === 405 || status === 501) && method === 'UPDATE') {
      this.refreshWithUpdate = false;
      this.refreshSession(terms);
    } else if ((status === 401 || status === 407) && credentials && !challenged.answered) {
      const answer = answerChallenge(status, get, credentials, { method, uri: challenged.uri });
      if (answer.ok) {
        this.refreshSession(terms, answer.header);
        return;
      }
      log.warn({ method, status, problem: answer.problem }, 'session refresh challenge not answered; trying again at the next half-interval');
      this.armSession(terms);
    } else if (status === 408 || status === 481) {
      this.endSession('session-refresh-failed', `session refresh (${method}) answered ${status}`);
    } else {
      log.warn({ method, status }, 'session refresh refused; trying again at the next half-interval');
      this.armSession(terms);
    }
  }

  /** The session is over without a BYE from the bot: BYE it, and tell the call why (onEnded, else a bare onBye). */
  private endSession(cause: string, detail: string): void {
    if (this.phase !== 'up') return;
    const { delegate } = this; // hangup() detaches it
    const { log } = this.opts;
    log.warn({ cause, detail }, 'SIP session ended by the session timer');
    void this.hangup({ Reason: SESSION_EXPIRED_REASON });
    if (delegate.onEnded) callDelegate(log, 'onEnded', () => delegate.onEnded!(cause));
    else callDelegate(log, 'onBye', () => delegate.onBye(NO_HEADERS));
  }

  /** §15.1.1: BYE with the caller's headers; done on any final response, Timer F or a send error. Never rejects. */
  private async bye(headers: Record<string, string>): Promise<void> {
    if (this.phase === 'ended') return;
    this.leave('ending');
    const { log } = this.opts;
    try {
      const destination = await this.destination();
      const extra = extraHeaders(headers, (name) => log.warn({ header: name }, 'invalid BYE header dropped'));
      const send = (auth: Header[]) =>
        new Promise<{ outcome: string; challenge?: IncomingMessage; uri: string }>((resolve) => {
          const request = this.dialog.createRequest('BYE', {
            via: this.stack.via(newBranch()),
            seq: this.dialog.nextSeq(),
            headers: [['User-Agent', this.stack.userAgent], ...extra, ...auth],
          });
          this.stack.startRequest(request, destination, log, {
            onResponse: (response) => {
              const status = response.sip.status!;
              if (status < 200) return;
              resolve({ outcome: `${status} ${response.sip.reason ?? ''}`.trim(), uri: request.uri, ...(status === 401 || status === 407 ? { challenge: response } : {}) });
            },
            onFailure: (failure) => resolve({ outcome: failure.message, uri: request.uri }),
          });
        });
      const first = await send([]);
      let { outcome } = first;
      // RFC 3261 §22.2: a proxy on the dialog's path may challenge the BYE too; answered once, as the INVITE was
      const { challenge } = first;
      const credentials = this.opts.credentials;
      if (challenge && credentials) {
        const status = challenge.sip.status as 401 | 407;
        const answer = answerChallenge(status, (name) => challenge.sip.get(name), credentials, { method: 'BYE', uri: first.uri });
        if (answer.ok) outcome = (await send([answer.header])).outcome;
        else log.warn({ status, problem: answer.problem }, `${status} to our BYE not answered`);
      }
      log.info({ outcome }, 'BYE done');
    } catch (err) {
      log.warn({ err }, 'BYE not sent');
    } finally {
      this.end();
    }
  }

  /**
   * The hosts the dialog names (Contact, Record-Route) join its peer, looked up as requests to them would be; a
   * lookup that fails adds nothing. Called when the dialog is made and after a target refresh from the peer.
   */
  learnPeerHosts(): void {
    for (const uri of this.dialog.peerUris) {
      this.stack.resolveHost(uri).then(
        (host) => this.opts.peer.add(host),
        () => undefined, // a request sent there reports it; the peer is no wider for it
      );
    }
  }

  /** The next hop's address, looked up once per next-hop URI (it changes only on a target refresh). */
  private destination(): Promise<Destination> {
    const uri = this.dialog.nextHopUri;
    if (this.nextHop?.uri !== uri) {
      const destination = this.stack.resolve(uri);
      destination.then(
        (peer) => (this.resolvedPeer = peer),
        () => undefined, // the request that asked reports it
      );
      this.nextHop = { uri, destination };
    }
    return this.nextHop.destination;
  }
}
