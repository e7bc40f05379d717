import jwt from 'jsonwebtoken';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { FRAME_BYTES } from './audio.js';
import { senderSchedule, type Chunk, type Pacing, type SenderProfile } from './sender-profiles.js';

// Section numbers (§) refer to /work/shared/talkdesk-protocol.md.

export interface StartParams {
  streamSid: string;
  accountSid: string;
  callSid: string;
  interactionId: string;
  /** customParameters.account_id; defaults to accountSid, which is what Talkdesk puts there. */
  accountId?: string;
  /** start.tracks; default ['inbound'] (the unidirectional agent-assist stream has both, §2.2) */
  tracks?: string[];
}

export interface StreamOptions {
  /** 160 (20 ms, as Twilio) or 320 (40 ms, as a public Talkdesk simulator). Default 160. */
  frameBytes?: number;
  /** Pace frames on the audio clock (absolute times, so no drift); false sends them all at once. Default true. */
  realtime?: boolean;
  /** Send as this sender does (sender-profiles.ts): its frame size and pace, instead of frameBytes and realtime. */
  profile?: SenderProfile | Pacing;
  /** Seeds the profile's jitter. Default 1. */
  seed?: number;
  /** media.track; default 'inbound' (the caller). 'outbound' is the agent, on the agent-assist stream. */
  track?: string;
}

/** One `media` frame as scheduled, and when it was really sent (performance.now()). */
export interface SentChunk extends Chunk {
  sentAt: number;
}

/**
 * One streamAudio() call as it went. The audio at byte `o` of chunk `c` was meant for t0 + c.nominalMs + (o −
 * c.offset) / 8 ms: a test measures each caller frame's delay at the bot from there.
 */
export interface SentStream {
  track: string;
  /** performance.now() at the stream's start: its chunks' times count from here. */
  t0: number;
  chunks: SentChunk[];
}

export interface FakeTalkdeskOptions {
  /** Echo each mark after this long, standing in for Talkdesk's playback. Default 0. */
  markEchoDelayMs?: number;
  /** false: never echo marks (Talkdesk's echo is unconfirmed, §2.5). Default true. */
  echoMarks?: boolean;
}

/** A frame from the plugin. Text that is not a JSON object is recorded as `{ raw }`, a binary frame as `{ binary }`
 * (base64): the plugin should send neither, and a test should see it if it does. */
export interface Received {
  at: number;
  msg: Record<string, unknown>;
}

/** The plugin refused the WebSocket upgrade. */
export class UpgradeRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`WebSocket upgrade refused: HTTP ${status} ${body}`);
    this.name = 'UpgradeRefusedError';
  }
}

interface Waiter {
  match: (r: Received) => boolean;
  resolve: (r: Received) => void;
}

/**
 * Talkdesk's side of a "Connect to Virtual Agent Voice" stream: a real ws client that sends what Talkdesk sends, with
 * its string counters, echoes our marks as Twilio does, and records every frame the plugin sends.
 */
export class FakeTalkdesk {
  readonly received: Received[] = [];
  /** Every streamAudio() call, in the order they began. */
  readonly streams: SentStream[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** One counter over every frame that carries one; `connected` has none (§2.1). */
  private sequenceNumber = 0;
  private chunk = 0;
  private audioMsSent = 0;
  private started: StartParams | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly markTimers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly ws: WebSocket,
    private readonly opts: FakeTalkdeskOptions,
  ) {
    ws.on('message', (data, isBinary) => {
      // ws hands over a Buffer unless binaryType was changed, which this client never does
      const bytes = data as Buffer;
      this.onFrame(isBinary ? { binary: bytes.toString('base64') } : parseFrame(bytes.toString('utf8')));
    });
    // without a listener, a socket error would crash the test process instead of surfacing through `closed`
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        for (const t of this.markTimers) clearTimeout(t);
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** Rejects with UpgradeRefusedError (status and body) when the plugin answers the upgrade with, e.g., 401. */
  static connect(url: string, opts: FakeTalkdeskOptions = {}): Promise<FakeTalkdesk> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new FakeTalkdesk(ws, opts)));
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          // with this listener ws leaves the refused request to us
          req.destroy();
          reject(new UpgradeRefusedError(res.statusCode ?? 0, body));
        });
      });
      ws.once('error', reject);
    });
  }

  sendConnected(): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  }

  sendStart(params: StartParams): void {
    this.started = params;
    this.send({
      event: 'start',
      sequenceNumber: this.nextSequenceNumber(),
      start: {
        streamSid: params.streamSid,
        accountSid: params.accountSid,
        callSid: params.callSid,
        tracks: params.tracks ?? ['inbound'],
        customParameters: {
          interaction_id: params.interactionId,
          account_id: params.accountId ?? params.accountSid,
        },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: params.streamSid,
    });
  }

  /**
   * The caller's audio as `media` frames, each sent at t0 + its scheduled time (absolute, so no drift) and recorded
   * in `streams`. Stops early, without error, if the socket closes meanwhile.
   */
  async streamAudio(ulaw: Buffer, opts: StreamOptions = {}): Promise<SentStream> {
    const { streamSid } = this.requireStarted('streamAudio');
    if (opts.profile !== undefined && (opts.frameBytes !== undefined || opts.realtime !== undefined)) {
      throw new Error('streamAudio(): a profile sets the frame size and pace; frameBytes and realtime go without one');
    }
    const pacing: SenderProfile | Pacing = opts.profile ?? {
      frameBytes: opts.frameBytes ?? FRAME_BYTES,
      speed: (opts.realtime ?? true) ? 1 : Infinity,
    };
    const track = opts.track ?? 'inbound';
    const stream: SentStream = { track, t0: performance.now(), chunks: [] };
    this.streams.push(stream);
    for (const chunk of senderSchedule(pacing, { totalBytes: ulaw.length, seed: opts.seed })) {
      // a timer can fire up to a millisecond early against performance.now() (media/clock.ts): never send early
      for (let wait = stream.t0 + chunk.atMs - performance.now(); wait > 0; wait = stream.t0 + chunk.atMs - performance.now()) {
        await sleep(wait);
      }
      if (this.ws.readyState !== WebSocket.OPEN) break;
      const payload = ulaw.subarray(chunk.offset, chunk.offset + chunk.bytes);
      this.send({
        event: 'media',
        sequenceNumber: this.nextSequenceNumber(),
        media: {
          track,
          chunk: String(++this.chunk),
          // ms of audio before this frame, as Twilio stamps it (not the simulator's 20 ms steps per 40 ms frame)
          timestamp: String(Math.round(this.audioMsSent)),
          payload: payload.toString('base64'),
        },
        streamSid,
      });
      stream.chunks.push({ ...chunk, sentAt: performance.now() });
      this.audioMsSent += payload.length / 8;
    }
    return stream;
  }

  /** The caller hung up (§2.4). */
  sendStop(): void {
    const { streamSid, accountSid, callSid } = this.requireStarted('sendStop');
    this.send({ event: 'stop', sequenceNumber: this.nextSequenceNumber(), stop: { accountSid, callSid }, streamSid });
  }

  /** Anything else: keep-alives of unknown shape, junk (§2.7). */
  /** Talkdesk documents JSON text frames only (§1); a binary frame is hostile input. */
  sendBinary(data: Buffer): void {
    this.ws.send(data, { binary: true });
  }

  sendRaw(text: string): void {
    this.ws.send(text);
  }

  close(code = 1000, reason = ''): Promise<{ code: number; reason: string }> {
    this.ws.close(code, reason);
    return this.closed;
  }

  /** The audio the plugin sent, one Buffer per `media` frame. */
  mediaPayloads(): Buffer[] {
    return this.received
      .filter((r) => r.msg.event === 'media')
      .map((r) => {
        const media = r.msg.media as { payload?: unknown } | undefined;
        return Buffer.from(typeof media?.payload === 'string' ? media.payload : '', 'base64');
      });
  }

  /** The first frame (already received or still to come) that `match` accepts. */
  waitFor(match: (r: Received) => boolean, timeoutMs: number, what = 'a matching frame'): Promise<Received> {
    const seen = this.received.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const events = () => this.received.map((r) => String(r.msg.event)).join(',');
      const finish = (err: Error | undefined, r?: Received) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (err) reject(err);
        else resolve(r as Received);
      };
      const waiter: Waiter = { match, resolve: (r) => finish(undefined, r) };
      const timer = setTimeout(
        () => finish(new Error(`no ${what} within ${timeoutMs} ms; received: ${events()}`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
      // a closed socket brings nothing more: fail now rather than at the timeout
      void this.closed.then(({ code, reason }) => {
        if (!this.waiters.has(waiter)) return;
        finish(new Error(`socket closed (${code} ${reason}) before ${what}; received: ${events()}`));
      });
    });
  }

  /** The plugin's `stop` (the call's result, §3.4) and when it came. */
  async waitForStop(timeoutMs: number): Promise<{ stop: Record<string, unknown>; at: number }> {
    const r = await this.waitFor((x) => x.msg.event === 'stop', timeoutMs, 'stop');
    return { stop: r.msg, at: r.at };
  }

  private onFrame(msg: Record<string, unknown>): void {
    const r: Received = { at: performance.now(), msg };
    this.received.push(r);
    for (const w of this.waiters) if (w.match(r)) w.resolve(r);
    if (r.msg.event === 'mark' && this.opts.echoMarks !== false) this.echoMark(r.msg);
  }

  private echoMark(msg: Record<string, unknown>): void {
    const timer = setTimeout(() => {
      this.markTimers.delete(timer);
      if (this.ws.readyState !== WebSocket.OPEN) return;
      this.send({
        event: 'mark',
        sequenceNumber: this.nextSequenceNumber(),
        streamSid: msg.streamSid ?? this.started?.streamSid,
        mark: msg.mark,
      });
    }, this.opts.markEchoDelayMs ?? 0);
    this.markTimers.add(timer);
  }

  private send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  private nextSequenceNumber(): string {
    return String(++this.sequenceNumber);
  }

  private requireStarted(what: string): StartParams {
    if (this.started === undefined) throw new Error(`${what}() before sendStart()`);
    return this.started;
  }
}

function parseFrame(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // not JSON: recorded raw
  }
  return { raw: text };
}

/** The `token` Kore puts in the Voice Stream URL: HS256 over `{ appId }` with the bot's client secret (§6). */
export function makeToken(clientId: string, secret: string): string {
  return jwt.sign({ appId: clientId }, secret, { algorithm: 'HS256' });
}

export interface TalkdeskUrlParams {
  port: number;
  sipuri: string;
  token: string;
  botId: string;
  accountId: string;
  /** Left out of the URL when undefined. */
  agentassist?: boolean;
  /** Kore's docs end the path with a slash, its flow export does not (§1): the plugin must accept both. */
  trailingSlash?: boolean;
}

/** A Voice Stream URL as Talkdesk Studio would call it, pointing at the plugin on loopback. */
export function talkdeskUrl(p: TalkdeskUrlParams): string {
  const query = new URLSearchParams({ sipuri: p.sipuri, token: p.token, botId: p.botId, accountId: p.accountId });
  if (p.agentassist !== undefined) query.set('agentassist', String(p.agentassist));
  return `ws://127.0.0.1:${p.port}/audiosocket/talkdesk${p.trailingSlash === true ? '/' : ''}?${query.toString()}`;
}
