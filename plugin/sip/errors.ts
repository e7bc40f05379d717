/**
 * Why an INVITE did not become a call. The failure classifies itself, so the call maps it to its end without
 * knowing which backend produced it.
 */
export type SipFailureKind =
  | 'rejected' // a final non-2xx response
  | 'timeout' // no final response in time (Timer B, or the call's own setup timeout)
  | 'canceled' // we gave up (Talkdesk hung up while ringing)
  | 'transport' // could not send: DNS, socket, TLS
  | 'unavailable' // the backend is not ready (e.g. drachtio-server disconnected)
  | 'auth-failed'; // challenged again after our credentials went out: wrong username, password or realm

export class SipFailure extends Error {
  override readonly name = 'SipFailure';
  constructor(
    readonly kind: SipFailureKind,
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
  }

  static rejected(status: number, reason: string): SipFailure {
    return new SipFailure('rejected', `INVITE rejected: ${status} ${reason}`, status, reason);
  }

  /** A 401/407 to the INVITE that carried our credentials (a stale nonce aside): they were refused. */
  static authFailed(status: number): SipFailure {
    return new SipFailure('auth-failed', `INVITE challenged again (${status}) after our credentials were sent: check CCAI_SIP_AUTH_USERNAME, CCAI_SIP_AUTH_PASSWORD and CCAI_SIP_AUTH_REALM`, status);
  }

  /** A 2xx without an SDP answer: both backends ACK it and BYE it, and the call fails as a 488 would. */
  static noSdpAnswer(): SipFailure {
    return new SipFailure('rejected', 'INVITE answered without an SDP answer; sent ACK and BYE', 488, 'No SDP in 2xx');
  }

  /** kebab-case, usable as a metric label and in the end-of-call log line */
  get cause(): string {
    return this.kind === 'rejected' ? `sip-${this.status}` : `sip-${this.kind}`;
  }
}

export function isSipFailure(err: unknown): err is SipFailure {
  return err instanceof SipFailure;
}
