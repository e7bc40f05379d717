import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { LogLimiter } from '../../media/log-limiter.js';
import { markFrame, mediaFrame, parseFrame, stopFrame, type TalkdeskFrame } from './codec.js';

/**
 * One Talkdesk WebSocket, speaking the protocol rules of shared/talkdesk-protocol.md §8 so the call does not have to:
 * lenient parsing (ignored and malformed frames never close the socket), `stop` sent at most once and never after
 * Talkdesk's own `stop`, marks matched to their echoes, and a close that waits for Talkdesk to hang up first.
 */
export interface TalkdeskStreamDelegate {
  onFrame(frame: Exclude<TalkdeskFrame, { kind: 'ignored' | 'malformed' | 'mark' }>): void;
  /** the socket is gone, whoever closed it */
  onClose(code: number): void;
  /**
   * Talkdesk has not read what we sent for `notReadingMs` (more than MAX_BUFFERED_BYTES unsent all that time): the
   * call cannot be heard and should end. Called once; bot audio is dropped meanwhile either way.
   */
  onNotReading?(detail: string): void;
}

export interface TalkdeskStreamOptions {
  /**
   * Kore's agent-assist stream (`agentassist=true`): Talkdesk's unidirectional stream, listen-only. Both tracks are
   * delivered, and nothing is ever sent back into the socket, whatever the call asks: no media, no mark, no stop
   * (the unidirectional component, `ai_voice_stream_start`, has one exit and takes no result: protocol notes §5).
   * Only the WebSocket close handshake ends it.
   */
  listenOnly?: boolean;
  /** how long the client may stay over MAX_BUFFERED_BYTES unsent before onNotReading; NOT_READING_MS by default */
  notReadingMs?: number;
}

export interface StopReport {
  command: 'ok' | 'error' | 'escalate';
  ringGroup?: string;
  accountSid?: string;
  callSid?: string;
}

/** Above this much unsent data the client is not reading; drop bot audio rather than grow memory without bound. */
const MAX_BUFFERED_BYTES = 512 * 1024;
/**
 * A client over the bound this long is not a slow network but a client that does not read (or a dead TCP peer that
 * has not timed out yet): the caller hears nothing, so the call is ended (`talkdesk-not-reading`). A constant, not a
 * setting: 10 s is 500 frames of bot audio lost, long past any jitter Talkdesk's side could recover from.
 */
export const NOT_READING_MS = 10_000;

/** echoed: Talkdesk played everything before the mark; skipped: no echo could come (stopped, closed, not started) */
export type DrainResult = 'echoed' | 'timeout' | 'skipped';

export class TalkdeskStream {
  private streamSid: string | undefined;
  private talkdeskStopped = false;
  private stopSent = false;
  private closed = false;
  /** pending drains by mark name; settled by the echo, or as skipped when no echo can come any more */
  private readonly marks = new Map<string, (result: DrainResult) => void>();
  private markCounter = 0;
  /**
   * One limiter per kind of trouble, each letting a line through at most every 10 s, so a flood of one kind cannot
   * hide the first line of another and nothing Talkdesk sends writes more than a few lines per 10 s (issue 13).
   * Ignored frames get one per message; their messages are the code's own constants, so the map stays a handful.
   */
  private readonly malformedLog = new LogLimiter();
  private readonly ignoredLogs = new Map<string, LogLimiter>();
  private readonly notReadingLog = new LogLimiter();
  private readonly closedPromise: Promise<void>;
  readonly stats = { framesIn: 0, framesOut: 0, ignored: 0, malformed: 0, mediaDropped: 0 };
  private readonly listenOnly: boolean;
  private readonly notReadingMs: number;
  /** since when every send found the client over the bound; undefined while it reads */
  private overBoundSince: number | undefined;
  private notReadingReported = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly log: Logger,
    private readonly delegate: TalkdeskStreamDelegate,
    opts: TalkdeskStreamOptions = {},
  ) {
    this.listenOnly = opts.listenOnly === true;
    this.notReadingMs = opts.notReadingMs ?? NOT_READING_MS;
    this.closedPromise = new Promise((resolve) => {
      ws.once('close', (code: number) => {
        this.closed = true;
        this.settleMarks('skipped');
        resolve();
        this.delegate.onClose(code);
      });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', (err) => this.log.warn({ err: err.message }, 'talkdesk socket error'));
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Talkdesk said `stop`: from now on we send nothing (protocol notes §2.4). */
  get stoppedByTalkdesk(): boolean {
    return this.talkdeskStopped;
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.stats.framesIn++;
    if (isBinary) {
      this.ignored('binary frame ignored: Talkdesk sends JSON text frames only');
      return;
    }
    const frame = parseFrame(data.toString(), { outboundTrack: this.listenOnly });
    switch (frame.kind) {
      case 'ignored':
        this.stats.ignored++;
        return;
      case 'malformed':
        this.stats.malformed++;
        this.notice(this.malformedLog, `malformed frame ignored: ${frame.why}`);
        return;
      case 'mark': {
        const settle = this.marks.get(frame.name);
        if (settle) {
          this.marks.delete(frame.name);
          settle('echoed');
        }
        return;
      }
      case 'start':
        // the first start names the stream for good: a second one must neither rename it nor reach the call
        if (this.streamSid !== undefined) {
          this.ignored('second start frame ignored');
          return;
        }
        this.streamSid = frame.streamSid;
        break;
      case 'stop':
        this.talkdeskStopped = true;
        this.settleMarks('skipped'); // no echo follows Talkdesk's stop
        break;
    }
    this.delegate.onFrame(frame);
  }

  /** Checked only when bot audio finds the client over the bound: no timer, nothing per frame while it reads. */
  private checkNotReading(): void {
    const now = performance.now();
    this.overBoundSince ??= now;
    if (this.notReadingReported || now - this.overBoundSince < this.notReadingMs) return;
    this.notReadingReported = true;
    this.delegate.onNotReading?.(
      `talkdesk read nothing for ${Math.round(now - this.overBoundSince)} ms: ${this.ws.bufferedAmount} bytes unsent`,
    );
  }

  private settleMarks(result: DrainResult): void {
    for (const settle of this.marks.values()) settle(result);
    this.marks.clear();
  }

  /** false from our close() or Talkdesk's close frame on, before the 'close' event (ws would drop the frame); always false listen-only */
  private get writable(): boolean {
    return !this.listenOnly && !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  private get canSend(): boolean {
    return this.writable && !this.talkdeskStopped && !this.stopSent && this.streamSid !== undefined;
  }

  /** Bot audio, forwarded as it arrives: Talkdesk queues and plays `media` in order (protocol notes §4). */
  sendMedia(payload: Buffer): void {
    if (!this.canSend) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.stats.mediaDropped++;
      this.notice(this.notReadingLog, `talkdesk is not reading: ${this.ws.bufferedAmount} bytes unsent, bot audio dropped`);
      this.checkNotReading();
      return;
    }
    // hysteresis: a client that does not read still lets the kernel take a few bytes now and then, dipping just
    // below the bound; only one that drains well below it is reading again
    if (this.ws.bufferedAmount < MAX_BUFFERED_BYTES / 2) this.overBoundSince = undefined;
    this.stats.framesOut++;
    this.ws.send(mediaFrame(this.streamSid!, payload.toString('base64')));
  }

  /**
   * Resolves when Talkdesk echoes a mark sent now, i.e. has played all audio sent before it, or after `timeoutMs`
   * (the echo is not confirmed for Talkdesk: protocol notes §2.5), or at once if nothing can be sent.
   */
  drain(timeoutMs: number): Promise<DrainResult> {
    if (!this.canSend) return Promise.resolve('skipped');
    const name = `drain-${++this.markCounter}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.marks.delete(name);
        resolve('timeout');
      }, timeoutMs);
      this.marks.set(name, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.stats.framesOut++;
      this.ws.send(markFrame(this.streamSid!, name));
    });
  }

  /**
   * At most once, and never after Talkdesk's own stop. Sent before we close, so Studio takes the right exit. Its
   * `sequenceNumber` is its place among the frames we sent, counted from 1 as Talkdesk numbers its own (protocol
   * notes §3.4, §8.5): framesOut is exactly that count, since a dropped media frame never counted.
   */
  sendStop(report: StopReport): boolean {
    if (!this.writable || this.talkdeskStopped || this.stopSent) return false;
    this.stopSent = true;
    const sequenceNumber = ++this.stats.framesOut;
    this.ws.send(stopFrame({ streamSid: this.streamSid, sequenceNumber, ...report }));
    return true;
  }

  /**
   * After our `stop`, Talkdesk is given `waitMs` to close first (protocol notes §4: recommendation); otherwise, or
   * after its own `stop`, we close with 1000. A socket that ignores the close handshake is terminated.
   */
  async close(waitMs: number): Promise<void> {
    if (this.closed) return;
    if (this.stopSent && !this.talkdeskStopped) await this.closedWithin(waitMs);
    if (this.closed) return;
    this.ws.close(1000);
    if (await this.closedWithin(waitMs)) return;
    this.ws.terminate();
    await this.closedPromise; // 'close' follows terminate() within a tick: resolve only when the socket is gone
  }

  private closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.closedPromise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /**
   * A frame that was well formed but of no use (a second start, a digit before the bot answered): counted in
   * `stats.ignored` and its message logged, rate-limited like every other line a peer's frames cause. `message` must
   * be a constant, never text from the peer: it keys its own limiter.
   */
  ignored(message: string): void {
    this.stats.ignored++;
    let limiter = this.ignoredLogs.get(message);
    if (limiter === undefined) this.ignoredLogs.set(message, (limiter = new LogLimiter()));
    this.notice(limiter, message);
  }

  private notice(limiter: LogLimiter, message: string): void {
    const suppressed = limiter.take();
    if (suppressed >= 0) this.log.warn({ ...this.stats, suppressed }, message);
  }
}
