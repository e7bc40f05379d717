import { ALLOW, type InviteRequest } from '../backend.js';
import { SipFailure, isSipFailure } from '../errors.js';
import type { ClientTransactionUser, InviteClientTransaction } from './client-transactions.js';
import { InviteAttempt } from '../invite-attempt.js';
import { DialogPeer } from '../dialog-peer.js';
import { Dialog } from './dialog.js';
import { newBranch, newCallId, newTag } from './ids.js';
import { hasSdp, type IncomingMessage } from './message.js';
import { extraHeaders, headerValue, requestInInviteTransaction, type OutgoingRequest } from './message-builder.js';
import { EmbeddedLeg } from './leg.js';
import type { SipStack } from './stack.js';
import type { Target } from './target-resolver.js';
import { readMinSe, termsFromAnswer, type SessionTerms } from './session-timer.js';
import { parseSipUri, uriWithoutParams } from './uri.js';
import { answerChallenge } from '../digest.js';

/** a stale nonce may be answered again, but not forever */
const MAX_AUTH_ANSWERS = 3;

/** the RFC 4028 part of a leg's options: the terms of its 2xx, and whether refreshes may be UPDATEs */
function sessionOf(response: IncomingMessage, asked: SessionTerms | undefined): { session?: SessionTerms; peerAllowsUpdate: boolean } {
  const session = termsFromAnswer((name) => response.sip.get(name), asked);
  const peerAllowsUpdate = /\bUPDATE\b/i.test(response.sip.get('allow') ?? '');
  return session ? { session, peerAllowsUpdate } : { peerAllowsUpdate };
}

/**
 * One outgoing INVITE, as the UA core of RFC 3261 §13.2 sees it: builds and sends the INVITE, reports progress,
 * turns every 2xx into an ACKed leg, and handles CANCEL (§9.1). `answered` settles once; the transactions it
 * started finish on their own timers afterwards.
 *
 * The request-URI may lead to several targets (RFC 3263 §4, target-resolver.ts). A target that fails before any
 * other final answer is left for the next (§4.3), each with its own transaction (same Call-ID and From tag, the next
 * CSeq, a new branch, as a digest retry): no response at all within CCAI_TARGET_TIMEOUT_MS (its transaction is then
 * abandoned: a late answer from it is dropped), a transport failure or Timer B, or a 503. A target that sent a 1xx is
 * never left on time. Only when the last target fails does the call hear of it, as that target's failure.
 */
export class InviteSession extends InviteAttempt implements ClientTransactionUser {
  private sent: { invite: OutgoingRequest; destination: Target; txn: InviteClientTransaction } | undefined;
  /** where the request-URI leads, in order; `sent.destination` is the one tried now */
  private targets: Target[] = [];
  /** fires when the target tried now stays silent, while another is left */
  private targetTimer: NodeJS.Timeout | undefined;
  /** the session timer we asked for after a 422 (RFC 4028 §7.4); none before */
  private asked: SessionTerms | undefined;
  /** the leg of every 2xx by its To tag: forks and retransmissions (§13.2.2.4) */
  private readonly legs = new Map<string, EmbeddedLeg>();
  private readonly localSdp: string;
  /** CCAI_SIP_AUTH_*: what a 401/407 is answered with */
  private readonly credentials: InviteRequest['credentials'];
  /** challenges answered so far: one, and more only for stale nonces */
  private authAnswers = 0;

  constructor(
    private readonly stack: SipStack,
    request: InviteRequest,
  ) {
    super(request.log, request.delegate);
    this.localSdp = request.sdp;
    this.credentials = request.credentials;
    void this.send(request);
  }

  protected provisionalCame(): boolean {
    return this.sent?.txn.state === 'proceeding';
  }

  onResponse(response: IncomingMessage): void {
    const status = response.sip.status!;
    this.stopTargetTimer();
    if (status < 200) this.onProvisional(status, response.sip);
    else if (status < 300) this.onAnswer(response).catch((err: unknown) => this.log.error({ err }, '2xx handling failed'));
    else if (status === 422 && this.retryWithMinSe(response)) return;
    else if ((status === 401 || status === 407) && this.retryWithCredentials(response, status)) return;
    else if ((status === 401 || status === 407) && this.authAnswers > 0) this.fail(SipFailure.authFailed(status));
    else if (status === 503 && this.tryNextTarget(`${status} ${response.sip.reason ?? ''}`.trim())) return;
    else this.fail(this.lastTarget(SipFailure.rejected(status, response.sip.reason ?? '')));
  }

  onFailure(failure: SipFailure): void {
    this.stopTargetTimer();
    if ((failure.kind === 'timeout' || failure.kind === 'transport') && this.tryNextTarget(failure.message)) return;
    this.fail(this.lastTarget(failure));
  }

  private async send(request: InviteRequest): Promise<void> {
    try {
      this.targets = await this.stack.resolveTargets(request.requestUri);
    } catch (err) {
      this.fail(isSipFailure(err) ? err : new SipFailure('transport', String(err)));
      return;
    }
    if (this.canceled) return; // canceled during the lookup: nothing was sent, nothing to cancel
    const invite = this.buildInvite(request);
    const destination = this.targets[0]!;
    const targets = this.targets.length > 1 ? { targets: this.targets.map(describe) } : {};
    request.log.info({ callId: headerValue(invite, 'Call-ID'), to: request.requestUri, destination, ...targets }, 'sending INVITE');
    this.sent = { invite, destination, txn: this.stack.startInvite(invite, destination, request.log, this) };
    this.startTargetTimer();
  }

  /**
   * RFC 3263 §4.3: the INVITE to the next target, if one is left and the call still wants it. A challenge answered
   * at the last target is not the next one's: its credentials header is left out, and the next may challenge anew.
   */
  private tryNextTarget(why: string): boolean {
    if (this.canceled || this.settled || !this.sent) return false;
    const from = this.sent.destination;
    const next = this.targets[this.targets.indexOf(from) + 1];
    if (next === undefined) return false;
    this.log.warn({ target: describe(from), reason: why, next: describe(next) }, 'CCAI target failed: INVITE sent to the next one');
    this.sent.txn.abandon();
    this.authAnswers = 0;
    this.resend([], /^(proxy-)?authorization$/i, next);
    this.startTargetTimer();
    return true;
  }

  /** the failure of the last target tried, saying so when there were others */
  private lastTarget(failure: SipFailure): SipFailure {
    if (this.targets.length < 2) return failure;
    return new SipFailure(failure.kind, `${failure.message} (the last of ${this.targets.length} CCAI targets; each failed)`, failure.status, failure.reason);
  }

  /** a silent target is left after CCAI_TARGET_TIMEOUT_MS, while another is left to try */
  private startTargetTimer(): void {
    const sent = this.sent;
    if (sent === undefined || sent.destination === this.targets[this.targets.length - 1]) return;
    const ms = this.stack.targetTimeoutMs;
    this.targetTimer = setTimeout(() => {
      this.targetTimer = undefined;
      if (this.sent === sent && sent.txn.state === 'calling') this.tryNextTarget(`no response within ${ms} ms`);
    }, ms);
  }

  private stopTargetTimer(): void {
    clearTimeout(this.targetTimer);
    this.targetTimer = undefined;
  }

  protected override onSettled(): void {
    this.stopTargetTimer();
  }

  /** §8.1.1 */
  private buildInvite(request: InviteRequest): OutgoingRequest {
    const { stack } = this;
    const target = parseSipUri(request.requestUri)!; // resolve() has validated it
    const extra = extraHeaders(request.headers, (name) => request.log.warn({ header: name }, 'invalid INVITE header dropped'));
    return {
      method: 'INVITE',
      uri: request.requestUri,
      headers: [
        ['Via', stack.via(newBranch())],
        ['Max-Forwards', '70'],
        ['From', `<${stack.localUri(request.fromUser)}>;tag=${newTag()}`],
        ['To', `<${uriWithoutParams(target)}>`],
        ['Call-ID', newCallId()],
        ['CSeq', '1 INVITE'],
        ['Contact', stack.contact(request.fromUser, target.scheme)],
        ['Allow', ALLOW],
        // RFC 4028: the bot may impose a session timer in its 2xx; we never ask for one first
        ['Supported', 'timer'],
        ['User-Agent', stack.userAgent],
        ...extra,
        // exactly this: sipp only reads the remote RTP address from a body typed application/sdp, unparameterised
        ['Content-Type', 'application/sdp'],
      ],
      body: request.sdp,
    };
  }

  /** §9.1: CANCEL shares the INVITE's branch, Call-ID, From, To and CSeq number. */
  protected sendCancel(): boolean {
    if (!this.sent) return false;
    const { invite, destination, txn } = this.sent;
    const { log } = this;
    const cancel = requestInInviteTransaction(invite, 'CANCEL', headerValue(invite, 'To')!);
    this.stack.startRequest(cancel, destination, log, {
      onResponse: (response) => log.debug({ status: response.sip.status }, 'CANCEL answered'),
      onFailure: (failure) => log.warn({ reason: failure.message }, 'CANCEL unanswered'),
    });
    txn.guardCancel();
    return true;
  }

  /**
   * Every 2xx creates a dialog that must be ACKed (§13.2.2.4). The first one, if still wanted, becomes the call's
   * leg; one that arrives after cancel() or from a second fork is ACKed and BYEd at once, so no leg is orphaned.
   * A retransmitted 2xx only gets its ACK again.
   */
  private async onAnswer(response: IncomingMessage): Promise<void> {
    const { log } = this;
    const tag = response.toTag ?? '';
    const known = this.legs.get(tag);
    if (known) {
      await known.acknowledge(response.cseq.seq);
      return;
    }
    const { invite, destination } = this.sent!;
    // the dialog's peer: where the INVITE went, where this 2xx came from, then its Contact and Record-Route hosts
    const peer = new DialogPeer(this.stack.ccaiSources, [destination.host, response.source?.host]);
    const leg = new EmbeddedLeg(this.stack, Dialog.fromAnswer(invite, response), {
      contact: headerValue(invite, 'Contact')!,
      localSdp: this.localSdp,
      remoteSdp: response.sip.body ?? '',
      peer,
      ...sessionOf(response, this.asked),
      delegate: this.delegate,
      log,
      ...(this.credentials === undefined ? {} : { credentials: this.credentials }),
    });
    this.legs.set(tag, leg);
    leg.learnPeerHosts();
    this.stack.addDialog(leg);
    if (!(await leg.acknowledge(response.cseq.seq))) {
      leg.end();
      this.fail(new SipFailure('transport', 'could not send the ACK for the 2xx'));
      return;
    }
    if (this.onAnswered(leg, hasSdp(response.sip))) leg.startSession();
  }

  /**
   * RFC 4028 §7.4: a 422 (Session Interval Too Small) names the bot's Min-SE; the INVITE is sent again once, asking
   * for that interval. The 422 itself was ACKed by its transaction. False when there is nothing to retry with.
   */
  private retryWithMinSe(response: IncomingMessage): boolean {
    const minSe = readMinSe((name) => response.sip.get(name));
    if (minSe === undefined || this.asked !== undefined || this.canceled || this.settled || !this.sent) return false;
    this.asked = { seconds: minSe, refresher: 'us', minSe };
    this.log.info({ minSe }, '422 Session Interval Too Small: INVITE sent again with the bot\'s Min-SE');
    this.resend([['Session-Expires', `${minSe};refresher=uac`], ['Min-SE', String(minSe)]]);
    return true;
  }

  /**
   * RFC 3261 §22.2: a 401 or 407 is answered once with the configured credentials (RFC 2617 digest, RFC 8760
   * SHA-256), and again only for a stale nonce; the challenge's realm must be the configured one when one is set, so
   * the password goes to no other. False when the INVITE is not to be sent again: the call then fails, as
   * `sip-auth-failed` once credentials went out, otherwise as the 401/407 it is.
   */
  private retryWithCredentials(response: IncomingMessage, status: 401 | 407): boolean {
    const credentials = this.credentials;
    if (credentials === undefined || this.canceled || this.settled || !this.sent) return false;
    const answer = answerChallenge(status, (name) => response.sip.get(name), credentials, { method: 'INVITE', uri: this.sent.invite.uri });
    if (!answer.ok) {
      this.log.warn({ status, problem: answer.problem }, `${status} challenge not answered`);
      return false;
    }
    const { challenge } = answer;
    if (this.authAnswers >= MAX_AUTH_ANSWERS || (this.authAnswers > 0 && !challenge.stale)) return false;
    this.authAnswers++;
    this.log.info({ status, realm: challenge.realm, algorithm: challenge.algorithm, stale: challenge.stale }, 'INVITE sent again with credentials');
    this.resend([answer.header], /^(proxy-)?authorization$/i);
    return true;
  }

  /**
   * The INVITE again, in the same dialog-to-be (Call-ID, From tag), with a new branch and the next CSeq (§8.1.3.5),
   * `add` before its body's Content-Type, and the headers `drop` names left out; to the same target unless told.
   */
  private resend(add: Array<readonly [string, string]>, drop?: RegExp, destination = this.sent!.destination): void {
    const { invite } = this.sent!;
    const seq = Number.parseInt(headerValue(invite, 'CSeq')!, 10) + 1;
    const retry: OutgoingRequest = {
      ...invite,
      headers: invite.headers.flatMap(([name, value]): Array<readonly [string, string]> => {
        if (drop?.test(name)) return [];
        switch (name.toLowerCase()) {
          case 'via':
            return [[name, this.stack.via(newBranch())]];
          case 'cseq':
            return [[name, `${seq} INVITE`]];
          case 'content-type':
            return [...add, [name, value]];
          default:
            return [[name, value]];
        }
      }),
    };
    this.sent = { invite: retry, destination, txn: this.stack.startInvite(retry, destination, this.log, this) };
  }
}

/** a target as the call's logs show it: `address:port (name)` */
function describe(target: Target): string {
  return target.name === target.host ? `${target.host}:${target.port}` : `${target.host}:${target.port} (${target.name})`;
}
