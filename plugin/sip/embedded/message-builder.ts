import type { IncomingMessage } from './message.js';

export type Header = readonly [name: string, value: string];

/** A request we send, kept structured so ACK and CANCEL can be derived from the INVITE. */
export interface OutgoingRequest {
  readonly method: string;
  readonly uri: string;
  /** in wire order; Content-Length is added on serialisation */
  readonly headers: readonly Header[];
  readonly body: string;
}

export interface ResponseSpec {
  readonly status: number;
  readonly reason: string;
  readonly headers?: readonly Header[];
  readonly body?: string;
}

export function headerValue(request: OutgoingRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  return request.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

function serialize(startLine: string, headers: readonly Header[], body: string): string {
  const lines = headers.map(([name, value]) => `${name}: ${value}`);
  // Content-Length counts bytes, not UTF-16 code units (§20.14)
  return `${startLine}\r\n${lines.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

export function serializeRequest(request: OutgoingRequest): string {
  return serialize(`${request.method} ${request.uri} SIP/2.0`, request.headers, request.body);
}

/**
 * A response to `request` (§8.2.6.2): Via list, From, Call-ID and CSeq copied; To copied, with `toTag` added when
 * the request's To has no tag yet.
 */
export function serializeResponse(request: IncomingMessage, spec: ResponseSpec, toTag: string): string {
  const { sip } = request;
  const to = request.toTag ? sip.get('to')! : `${sip.get('to')!};tag=${toTag}`;
  const headers: Header[] = [
    ['Via', sip.get('via')!],
    ['From', sip.get('from')!],
    ['To', to],
    ['Call-ID', request.callId],
    ['CSeq', `${request.cseq.seq} ${request.cseq.method}`],
    ...(spec.headers ?? []),
  ];
  return serialize(`SIP/2.0 ${spec.status} ${spec.reason}`, headers, spec.body ?? '');
}

/**
 * ACK for a non-2xx final response (§17.1.1.3) and CANCEL (§9.1) share the INVITE's transaction: same
 * request-URI, top Via (hence branch), From, Call-ID, Route and CSeq number. They differ in To: the ACK takes the
 * response's To (with its tag), the CANCEL the INVITE's.
 */
export function requestInInviteTransaction(invite: OutgoingRequest, method: 'ACK' | 'CANCEL', to: string): OutgoingRequest {
  const copied = (name: string): Header[] => invite.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase());
  const cseq = Number.parseInt(headerValue(invite, 'CSeq')!, 10);
  return {
    method,
    uri: invite.uri,
    headers: [
      copied('Via')[0]!,
      ...copied('Route'),
      ['Max-Forwards', '70'],
      ...copied('From'),
      ['To', to],
      ...copied('Call-ID'),
      ['CSeq', `${cseq} ${method}`],
    ],
    body: '',
  };
}

const LINE_BREAK = /[\r\n]/;
const TOKEN = /^[A-Za-z0-9!%*_+`'~.-]+$/;

/**
 * Caller-supplied headers (InviteRequest.headers, hangup headers) in the given order. A name that is not a token
 * or a value with a line break would corrupt the message (or inject headers): it is dropped and reported.
 */
export function extraHeaders(headers: Readonly<Record<string, string>>, onInvalid: (name: string) => void): Header[] {
  return Object.entries(headers).filter(([name, value]) => {
    const valid = TOKEN.test(name) && !LINE_BREAK.test(value);
    if (!valid) onInvalid(name);
    return valid;
  });
}
