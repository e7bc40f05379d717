import { MAX_MESSAGE_BYTES } from './message.js';

/** What one chunk of a stream yielded: the messages it completed, and `error` when the stream is not SIP. */
export interface FramedChunk {
  readonly messages: Buffer[];
  /** why the stream cannot be framed any further: its connection must be closed (RFC 3261 §18.3) */
  readonly error?: string;
}

const CR = 0x0d;
const LF = 0x0a;
const HEADER_END = Buffer.from('\r\n\r\n');
/** §7.1 Request-Line and §7.2 Status-Line; what precedes the first CRLF must be one of them */
const START_LINE = /^(?:[A-Za-z!%*_+`'~.-]+ \S+ SIP\/2\.0|SIP\/2\.0 \d{3}(?: [^\r\n]*)?)$/;
/** §20.14 Content-Length, and its compact form `l` (§7.3.3) */
const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:[ \t]*(.*?)[ \t]*$/i;

/**
 * Splits a SIP byte stream (TCP, TLS) into messages. RFC 3261 §18.3: on a stream, Content-Length is mandatory and
 * is the only way to find where a message ends:
 *
 *   *(CRLF) start-line CRLF *(message-header CRLF) CRLF message-body(Content-Length bytes)
 *
 * CRLFs before a start line are skipped: RFC 5626 §3.5.1 keep-alives (CRLFCRLF ping, CRLF pong) and §7.5's stray
 * line breaks. A stream that breaks these rules cannot be resynchronised, so framing stops with an error: a garbage
 * start line, a missing or unreadable Content-Length, or a message over MAX_MESSAGE_BYTES. Never throws.
 */
export class StreamFramer {
  private buffered: Buffer = Buffer.alloc(0);
  private failed: string | undefined;

  /** bytes of a message not yet complete are held (line breaks between messages do not count) */
  get pending(): boolean {
    return this.buffered.length > 0;
  }

  push(chunk: Buffer): FramedChunk {
    if (this.failed !== undefined) return { messages: [], error: this.failed };
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: Buffer[] = [];
    for (;;) {
      this.skipLineBreaks();
      if (this.buffered.length === 0) return { messages };
      const next = this.frameOne();
      if (next === 'incomplete') return { messages };
      if (typeof next === 'string') {
        this.failed = next;
        this.buffered = Buffer.alloc(0);
        return { messages, error: next };
      }
      messages.push(next);
    }
  }

  private skipLineBreaks(): void {
    let i = 0;
    while (i < this.buffered.length && (this.buffered[i] === CR || this.buffered[i] === LF)) i++;
    if (i > 0) this.buffered = this.buffered.subarray(i);
  }

  /** the first message of the buffer, 'incomplete' when more bytes are needed, or why the stream is unusable */
  private frameOne(): Buffer | 'incomplete' | string {
    const buf = this.buffered;
    const firstLineEnd = buf.indexOf('\r\n');
    if (firstLineEnd >= 0 && !START_LINE.test(buf.toString('latin1', 0, firstLineEnd))) {
      return `not a SIP start line: ${JSON.stringify(buf.toString('latin1', 0, Math.min(firstLineEnd, 60)))}`;
    }
    const headerEnd = buf.indexOf(HEADER_END);
    if (headerEnd < 0) {
      return buf.length > MAX_MESSAGE_BYTES ? `no end of headers within ${MAX_MESSAGE_BYTES} bytes` : 'incomplete';
    }
    const bodyLength = contentLength(buf.toString('latin1', firstLineEnd + 2, headerEnd));
    if (typeof bodyLength === 'string') return bodyLength;
    const total = headerEnd + HEADER_END.length + bodyLength;
    if (total > MAX_MESSAGE_BYTES) return `oversized message (${total} bytes > ${MAX_MESSAGE_BYTES})`;
    if (buf.length < total) return 'incomplete';
    this.buffered = buf.subarray(total);
    return buf.subarray(0, total);
  }
}

/** the body length the headers declare, or why it cannot be known */
function contentLength(headers: string): number | string {
  const values = new Set<string>();
  for (const line of headers.split('\r\n')) {
    const m = CONTENT_LENGTH.exec(line);
    if (m) values.add(m[1]!);
  }
  if (values.size === 0) return 'no Content-Length (mandatory on stream transports, RFC 3261 §18.3)';
  const [value] = values;
  if (values.size > 1 || !/^\d{1,10}$/.test(value!)) return `bad Content-Length ${[...values].join(', ')}`;
  return Number(value);
}
