import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { parseSipMessage, type IncomingMessage } from '../../../../plugin/sip/embedded/message.js';

/** A test log that stays quiet unless SIP_TEST_LOG=debug (or another level) is set. */
export const testLog = pino({ level: process.env.SIP_TEST_LOG ?? 'silent' });

export interface Received {
  readonly message: IncomingMessage;
  readonly raw: string;
  readonly at: number;
}

export const BOT_SDP = [
  'v=0',
  'o=bot 1 1 IN IP4 127.0.0.1',
  's=bot',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 16000 RTP/AVP 0',
  'a=rtpmap:0 PCMU/8000',
  '',
].join('\r\n');

/**
 * A scriptable UAS on a plain node:dgram socket: it records every message the backend sends and lets the test
 * answer or send requests by hand, so each transaction rule is observed on the wire.
 */
export class FakeUas {
  readonly received: Received[] = [];
  private consumed = new Set<Received>();
  private waiters: Array<() => void> = [];
  private cseq = 1;
  readonly tag = randomBytes(4).toString('hex');

  /** `host`: the loopback address it sends from; another one (127.0.0.2) plays a stranger to the backend's dialogs */
  private constructor(
    private readonly socket: Socket,
    readonly host: string,
  ) {
    socket.on('message', (data) => {
      const parsed = parseSipMessage(data);
      if (!parsed.ok) throw new Error(`fake UAS got an unparseable message: ${parsed.reason}\n${data.toString()}`);
      this.received.push({ message: parsed.message, raw: data.toString(), at: Date.now() });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async start(host = '127.0.0.1'): Promise<FakeUas> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    return new FakeUas(socket, host);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get uri(): string {
    return `sip:+17345551234@${this.host}:${this.port};transport=udp`;
  }

  /** the next not yet consumed message matching `what` (a method, or "<status>" for a response) */
  async next(what: string, timeoutMs = 2000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => !this.consumed.has(r) && label(r) === what);
      if (hit) {
        this.consumed.add(hit);
        return hit;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake UAS: no ${what} within ${timeoutMs} ms; got ${this.received.map(label).join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * The next `method` request after `previous`, a higher CSeq: with T1 at 10 ms a loaded machine can answer later than
   * the first retransmission, and a retransmitted request is the same one (a real UAS's server transaction absorbs
   * it, RFC 3261 §17.2), not the next.
   */
  async nextAfter(method: string, previous: Received): Promise<Received> {
    for (;;) {
      const request = await this.next(method);
      if (request.message.cseq.seq > previous.message.cseq.seq) return request;
    }
  }

  /** The CSeqs of the `method` requests received, in order, each once: retransmissions are the same request. */
  cseqs(method: string): number[] {
    return [...new Set(this.received.filter((r) => r.message.sip.method === method).map((r) => r.message.cseq.seq))];
  }

  count(what: string): number {
    return this.received.filter((r) => label(r) === what).length;
  }

  /** Answers `request` as §8.2.6.2 says; a To tag is added unless `toTag: null`. */
  reply(request: Received, status: number, reason: string, opts: { toTag?: string | null; headers?: string[]; body?: string; contentType?: string } = {}): string {
    const { sip } = request.message;
    const toTag = opts.toTag === null ? undefined : (opts.toTag ?? this.tag);
    const to = request.message.toTag || !toTag ? sip.get('to')! : `${sip.get('to')!};tag=${toTag}`;
    return this.sendToBackend(
      request,
      [
        `SIP/2.0 ${status} ${reason}`,
        `Via: ${sip.get('via')!}`,
        `From: ${sip.get('from')!}`,
        `To: ${to}`,
        `Call-ID: ${request.message.callId}`,
        `CSeq: ${sip.get('cseq')!}`,
      ],
      opts,
    );
  }

  /**
   * A request from the bot inside the dialog the INVITE's 2xx created (From/To swapped, our tag on From).
   * Returns the raw text so the test can retransmit it. `fromTag` and `cseq` let a stranger who read the dialog's
   * identifiers off the wire pose as the bot.
   */
  requestInDialog(
    invite: Received,
    method: string,
    opts: { headers?: string[]; body?: string; toTag?: string; fromTag?: string; cseq?: number } = {},
  ): string {
    const { sip } = invite.message;
    const contact = /<([^>]+)>/.exec(sip.get('contact')!)![1]!;
    const from = opts.toTag === undefined ? sip.get('from')! : sip.get('from')!.replace(/tag=[^;]+/, `tag=${opts.toTag}`);
    return this.sendToBackend(
      invite,
      [
        `${method} ${contact} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.host}:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')}`,
        `From: ${sip.get('to')!};tag=${opts.fromTag ?? this.tag}`,
        `To: ${from}`,
        `Call-ID: ${invite.message.callId}`,
        `CSeq: ${opts.cseq ?? ++this.cseq} ${method}`,
        'Max-Forwards: 70',
      ],
      opts,
    );
  }

  /**
   * Completes a message of ours after its start line and dialog headers (`head`): our Contact, the test's extra
   * headers, then the body (typed application/sdp unless `contentType` says otherwise). Sends it to the backend port
   * that `to` came from; returns it.
   */
  private sendToBackend(to: Received, head: string[], opts: { headers?: string[]; body?: string; contentType?: string }): string {
    const body = opts.body ?? '';
    const raw = [
      ...head,
      `Contact: <sip:bot@${this.host}:${this.port};transport=udp>`,
      ...(body ? [`Content-Type: ${opts.contentType ?? 'application/sdp'}`] : []),
      ...(opts.headers ?? []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    this.send(raw, portOf(to));
    return raw;
  }

  send(raw: string | Buffer, port: number): void {
    this.socket.send(raw, port, '127.0.0.1');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

function label(r: Received): string {
  return r.message.sip.method ?? String(r.message.sip.status);
}

/** the backend's port, from the Via sent-by of what it sent */
function portOf(r: Received): number {
  return r.message.via.port!;
}
