import SipMessage from 'drachtio-srf/lib/sip-parser/message.js';
import { splitHeaderList } from '../header-list.js';
import { sdpBody } from '../progress.js';
import { parseCSeq, parseVia, tagOf, type CSeq, type Via } from './header-fields.js';
import type { Destination } from './transport.js';

/**
 * Largest message we accept. A UDP datagram cannot exceed 65,507 bytes anyway; stream transports (§18.3) must
 * enforce the same bound while framing.
 */
export const MAX_MESSAGE_BYTES = 65_535;

/** A received message that carries everything transactions and dialogs match on (RFC 3261 §8.1.1, §17.1.3, §17.2.3). */
export interface IncomingMessage {
  /** drachtio's parsed message; also the SipMessageView handed to delegates */
  readonly sip: SipMessage;
  readonly callId: string;
  readonly cseq: CSeq;
  /** the topmost Via */
  readonly via: Via;
  readonly branch: string;
  readonly fromTag?: string;
  readonly toTag?: string;
  /**
   * Who sent it (on TCP/TLS the connection's peer), set by the stack as it receives: a dialog acts only on requests
   * from its peer (../dialog-peer.ts). Absent in a message that did not come off the wire, which no dialog obeys.
   */
  readonly source?: Destination;
}

export type ParseResult = { ok: true; message: IncomingMessage } | { ok: false; reason: string };

/**
 * Parses one framed message. Never throws: drachtio's parser throws on a start line or header it cannot read, and
 * anything else a peer can get wrong becomes `{ok: false, reason}` for the edge to count and drop.
 */
export function parseSipMessage(data: Buffer | string): ParseResult {
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (bytes > MAX_MESSAGE_BYTES) return { ok: false, reason: `oversized (${bytes} bytes > ${MAX_MESSAGE_BYTES})` };
  const text = typeof data === 'string' ? data : data.toString('utf8');

  let sip: SipMessage;
  try {
    sip = new SipMessage(text);
  } catch {
    return { ok: false, reason: 'unparseable start line or header' };
  }
  if (sip.type === 'unknown') return { ok: false, reason: 'unparseable start line' };
  // drachtio reads any number as a status and any version: a status outside 100-699 would be taken as final
  const startLine = text.slice(0, Math.max(0, text.indexOf('\r\n')));
  if (sip.type === 'response' ? !STATUS_LINE.test(startLine) : !REQUEST_LINE_VERSION.test(startLine)) {
    return { ok: false, reason: sip.type === 'response' ? 'status line not SIP/2.0 with a code 100-699' : 'request line not SIP/2.0' };
  }

  // §8.1.1: the headers every request and response must carry (Max-Forwards is not enforced: we never forward)
  for (const name of ['via', 'cseq', 'call-id', 'from', 'to'] as const) {
    if (!sip.get(name)) return { ok: false, reason: `missing ${name} header` };
  }
  // headers that appear once (§20): repeated ones reach us joined with "," and would match nothing or the wrong thing
  if (sip.get('call-id')!.includes(',')) return { ok: false, reason: 'more than one Call-ID' };
  for (const name of ['from', 'to'] as const) {
    const value = sip.get(name)!;
    if (!balancedQuotes(value)) return { ok: false, reason: `unbalanced quotes in ${name} header` };
    if (splitHeaderList(value).length !== 1) return { ok: false, reason: `more than one ${name} header` };
  }
  const topVia = splitHeaderList(sip.get('via')!)[0];
  const via = topVia === undefined ? undefined : parseVia(topVia);
  if (!via) return { ok: false, reason: 'unreadable Via' };
  // Deviation: RFC 2543 peers (Via without a z9hG4bK branch, §17.2.3's fallback matching) are not supported.
  const branch = via.params.branch;
  if (!branch) return { ok: false, reason: 'Via without branch' };
  const cseq = parseCSeq(sip.get('cseq')!);
  if (!cseq) return { ok: false, reason: 'unreadable CSeq' };
  if (sip.method !== undefined && sip.method !== cseq.method) {
    return { ok: false, reason: `CSeq method ${cseq.method} does not match request method ${sip.method}` };
  }
  const truncation = bodyShortfall(text, sip.get('content-length'));
  if (truncation) return { ok: false, reason: truncation };

  const fromTag = tagOf(sip.get('from'));
  const toTag = tagOf(sip.get('to'));
  return {
    ok: true,
    message: {
      sip,
      callId: sip.get('call-id')!.trim(),
      cseq,
      via,
      branch,
      ...(fromTag ? { fromTag } : {}),
      ...(toTag ? { toTag } : {}),
    },
  };
}

const STATUS_LINE = /^SIP\/2\.0 [1-6]\d\d(?: |$)/;
const REQUEST_LINE_VERSION = / SIP\/2\.0$/;

/** every `"` not escaped by a backslash (§25.1 quoted-pair) closes the one before it */
function balancedQuotes(value: string): boolean {
  let open = false;
  for (let i = 0; i < value.length; i++) {
    if (open && value[i] === '\\') i++;
    else if (value[i] === '"') open = !open;
  }
  return !open;
}

/** §18.3: on UDP, a message whose body is shorter than its Content-Length is discarded. */
function bodyShortfall(text: string, contentLength: string | undefined): string | undefined {
  if (contentLength === undefined) return undefined;
  const declared = Number(contentLength.trim());
  if (!Number.isInteger(declared) || declared < 0) return `bad Content-Length ${contentLength}`;
  const separator = text.indexOf('\r\n\r\n');
  const actual = separator < 0 ? 0 : Buffer.byteLength(text.slice(separator + 4));
  return actual < declared ? `body shorter (${actual} bytes) than Content-Length ${declared}` : undefined;
}

/** true when the body is an SDP (Content-Type application/sdp, parameters ignored) */
export function hasSdp(sip: SipMessage): boolean {
  return sdpBody(sip) !== undefined;
}
