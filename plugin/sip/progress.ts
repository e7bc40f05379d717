import type { Logger } from 'pino';
import type { LegDelegate } from './backend.js';
import { callDelegate } from './delegate-guard.js';

/** What both adapters can read of a received message: drachtio-srf's SipMessage and its Response both have these. */
export interface BodyView {
  readonly body?: string;
  get(name: string): string | undefined;
}

/**
 * The body when it is an SDP: Content-Type application/sdp (parameters ignored) and not blank. Anything else in a
 * body is no offer or answer of ours to read (RFC 3261 §13.2.1, RFC 3264).
 */
export function sdpBody(msg: BodyView): string | undefined {
  const type = msg.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  const body = msg.body ?? '';
  return type === 'application/sdp' && body.trim().length > 0 ? body : undefined;
}

/**
 * A 1xx to our INVITE, reported the one way both adapters must (the contract suite holds them to it). 100 Trying is
 * hop-by-hop and says nothing about the bot. An SDP in an 18x is its early answer (RFC 3960 §3): passed on for the
 * call to receive early media with; whether it is usable is the call's to judge, as for the 2xx.
 */
export function reportProgress(log: Logger, delegate: LegDelegate, status: number, response: BodyView): void {
  if (status <= 100) return;
  const sdp = sdpBody(response);
  callDelegate(log, 'onProgress', () => (sdp === undefined ? delegate.onProgress?.(status) : delegate.onProgress?.(status, sdp)));
}
