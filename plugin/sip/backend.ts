import type { Logger } from 'pino';

/**
 * The one port between a call and its SIP leg. The call places an INVITE through it and hears back through the
 * delegate; it never builds or reads raw SIP. Two adapters implement it: `embedded` (our own RFC 3261 UAC) and
 * `drachtio` (drachtio-srf in front of the gateway's drachtio-server). Both must pass the same contract tests.
 */
/** The methods both backends answer in a dialog (and the embedded one out of it, OPTIONS): their Allow header. */
export const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER';

export interface SipBackend {
  readonly name: 'embedded' | 'drachtio';
  /** INVITEs can go out now (started, and connected where there is a server to connect to): /ready and admission read it */
  readonly ready: boolean;
  /** Bind sockets / connect; rejects with a message naming the setting at fault. */
  start(): Promise<void>;
  /** Release sockets and timers. Live legs are not touched: the registry ends calls first. */
  stop(): Promise<void>;
  /**
   * Send an INVITE. Never throws: every failure arrives as a rejection of `answered` with a SipFailure.
   * The backend owns SIP timers (RFC 3261 A/B/D/E/F/K); the call owns its own setup timeout and calls cancel().
   */
  invite(request: InviteRequest): OutgoingInvite;
}

/** A read-only view of a received SIP message: drachtio-srf's SipMessage in both adapters. */
export interface SipMessageView {
  readonly method?: string;
  readonly status?: number;
  readonly reason?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** case-insensitive, compact forms understood */
  get(name: string): string | undefined;
  has(name: string): boolean;
}

export interface InviteRequest {
  /** full request-URI, e.g. `sip:+17345551234@ccai.example.com:5060;transport=udp` */
  requestUri: string;
  /** user part of our From/Contact */
  fromUser: string;
  /** extra headers (e.g. X-Talkdesk-Call-Sid); names as given */
  headers: Record<string, string>;
  /** our SDP offer */
  sdp: string;
  /** what a 401/407 is answered with (RFC 3261 §22.2); with `realm`, only that realm's challenge */
  credentials?: { username: string; password: string; realm?: string };
  log: Logger;
  delegate: LegDelegate;
}

/** What the leg reports to its call. Every callback is optional to the backend's timing but called at most once
 * for terminal events (`onBye`). Callbacks must not throw; the backend guards them anyway. */
export interface LegDelegate {
  /**
   * A provisional response (100 is not reported). `sdp` is its body when that is an SDP (application/sdp): the bot's
   * early answer to our offer, to receive early media with (RFC 3960 §3: a prompt played before the 2xx). Every such
   * 1xx is reported, each with its own SDP; the 2xx's (`SipLeg.remoteSdp`) is the answer that counts, and may differ.
   * RFC 3262 reliable provisionals are not asked for (no `Supported: 100rel`); drachtio-srf PRACKs one if it comes.
   */
  onProgress?(status: number, sdp?: string): void;
  /** The far end sent BYE; the backend has already answered 200 OK. */
  onBye(bye: SipMessageView): void;
  /** A re-INVITE (or UPDATE) carried a new remote SDP; the backend answered with our current local SDP. */
  onRemoteSdp(sdp: string): void;
  /** An in-dialog INFO (e.g. application/dtmf-relay); the backend answered 200 OK. */
  onInfo?(info: SipMessageView): void;
  /**
   * The far end asked for a transfer (REFER, RFC 3515): the backend answered 202 Accepted and sent the NOTIFY that
   * ends the implicit subscription (`Subscription-State: terminated`, sipfrag `SIP/2.0 200 OK`): the transfer is the
   * call's to carry out, on Talkdesk's side. The leg stays up until the call ends it. A REFER without exactly one
   * Refer-To gets 400, and one that arrives after our BYE went out gets 603; neither is reported.
   */
  onRefer(refer: SipMessageView): void;
  /**
   * The backend ended the leg itself, e.g. an RFC 4028 session that expired without a refresh (`session-expired`):
   * no BYE from the far end, nothing left to hang up. `cause` is kebab-case. At most once, and never after onBye.
   * Without this callback the backend reports it as onBye with a view that carries no header.
   */
  onEnded?(cause: string): void;
}

/**
 * What a leg or an INVITE reports to once the call is done with it: nothing. A transaction outlives its call by up to
 * 32 s to absorb retransmissions (RFC 3261 Timers J and M); swapped in for the call's delegate, it lets that memory go.
 */
export const DETACHED: LegDelegate = { onBye: () => undefined, onRemoteSdp: () => undefined, onRefer: () => undefined };

export interface OutgoingInvite {
  /** Resolves on 2xx (after ACK is sent). Rejects with SipFailure: rejected, timeout, canceled, transport, unavailable. */
  readonly answered: Promise<SipLeg>;
  /**
   * Give up on the attempt. Before any provisional response nothing can be cancelled yet (RFC 3261 §9.1): the
   * backend sends CANCEL as soon as one arrives, and a 2xx that still races in is ACKed and BYEd. `answered` rejects
   * with a `canceled` SipFailure at once. Idempotent; a no-op after `answered` settled.
   */
  cancel(): void;
}

export interface SipLeg {
  readonly callId: string;
  /** SDP of the 2xx answer */
  readonly remoteSdp: string;
  /** Send BYE (with optional headers) and resolve when it is answered or timed out. Idempotent. Never rejects. */
  hangup(headers?: Record<string, string>): Promise<void>;
}

/**
 * `inner` with its INVITEs watched: everything else passes straight through. The metrics count each INVITE's result
 * this way, and `npm run probe` writes its call's ladder.
 */
export function watchInvites(inner: SipBackend, invite: (request: InviteRequest) => OutgoingInvite): SipBackend {
  return {
    get name() {
      return inner.name;
    },
    get ready() {
      return inner.ready;
    },
    start: () => inner.start(),
    stop: () => inner.stop(),
    invite,
  };
}
