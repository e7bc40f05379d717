import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES } from '../../../../plugin/sip/embedded/message.js';
import { StreamFramer } from '../../../../plugin/sip/embedded/stream-framer.js';

function message(body: string, headers: string[] = []): string {
  const head = ['SIP/2.0 200 OK', 'Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1', 'CSeq: 1 INVITE', ...headers];
  return [...head, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

const SDP = 'v=0\r\no=bot 1 1 IN IP4 127.0.0.1\r\ns=é\r\n';
const BYE = 'BYE sip:gw@127.0.0.1:5060;transport=tcp SIP/2.0\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n';

/** pushes each chunk, returns every framed message as text and the error, if any */
function frame(...chunks: (string | Buffer)[]): { messages: string[]; error?: string } {
  const framer = new StreamFramer();
  const messages: string[] = [];
  let error: string | undefined;
  for (const chunk of chunks) {
    const out = framer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    messages.push(...out.messages.map((m) => m.toString()));
    error ??= out.error;
  }
  return error === undefined ? { messages } : { messages, error };
}

describe('StreamFramer (RFC 3261 §18.3)', () => {
  it('frames two messages coalesced in one chunk, the body counted in bytes, compact Content-Length understood', () => {
    const first = message(SDP, ['Content-Type: application/sdp']);
    expect(frame(first + BYE)).toEqual({ messages: [first, BYE] });
  });

  it('frames a message split byte by byte, and one whose body is split across chunks', () => {
    const whole = message(SDP);
    expect(frame(...[...Buffer.from(whole)].map((b) => Buffer.from([b])))).toEqual({ messages: [whole] });
    const cut = whole.length - 10;
    expect(frame(whole.slice(0, cut), whole.slice(cut) + BYE.slice(0, 5), BYE.slice(5))).toEqual({ messages: [whole, BYE] });
  });

  it('ignores CRLF keep-alives (RFC 5626 §3.5.1) before, between and after messages', () => {
    expect(frame('\r\n\r\n', `${BYE}\r\n`, '\r\n\r\n', BYE, '\r\n')).toEqual({ messages: [BYE, BYE] });
  });

  it.each([
    ['no Content-Length', 'BYE sip:gw@h SIP/2.0\r\nCSeq: 2 BYE\r\n\r\n', /no Content-Length/],
    ['an unreadable Content-Length', 'BYE sip:gw@h SIP/2.0\r\nContent-Length: ten\r\n\r\n', /bad Content-Length ten/],
    ['a negative Content-Length', 'BYE sip:gw@h SIP/2.0\r\nContent-Length: -1\r\n\r\n', /bad Content-Length -1/],
    ['two different Content-Lengths', 'BYE sip:gw@h SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n', /bad Content-Length 1, 2/],
    ['an oversized Content-Length', `BYE sip:gw@h SIP/2.0\r\nContent-Length: ${MAX_MESSAGE_BYTES}\r\n\r\n`, /oversized/],
    ['a garbage start line', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', /not a SIP start line: "GET \/ HTTP\/1.1"/],
  ])('stops at %s, keeping the messages framed before it', (_name, bad, reason) => {
    const out = frame(BYE + bad);
    expect(out.messages).toEqual([BYE]);
    expect(out.error).toMatch(reason);
  });

  it('stops when no end of headers comes within the message size limit, and stays stopped', () => {
    const framer = new StreamFramer();
    const head = 'INVITE sip:x@h SIP/2.0\r\n';
    expect(framer.push(Buffer.from(head)).error).toBeUndefined();
    const flood = framer.push(Buffer.alloc(MAX_MESSAGE_BYTES, 'a'));
    expect(flood.error).toMatch(/no end of headers within/);
    expect(framer.push(Buffer.from(BYE))).toEqual({ messages: [], error: flood.error });
  });
});
