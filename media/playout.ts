/** μ-law encodes silence (zero amplitude) as 0xFF. */
const MULAW_SILENCE = 0xff;
/** G.711 at 8 kHz: one byte per sample, 8 samples per ms. */
const BYTES_PER_MS = 8;

export interface PlayoutBufferOptions {
  /** Bytes per frame; 160 = 20 ms of PCMU. */
  frameBytes?: number;
  /** Most audio held; beyond it the oldest is dropped so a sender running fast cannot build up delay. */
  maxMs?: number;
  /** Pulls per adaptation window: surplus trimmed and the pull phase re-aimed once each. Default 50 (1 s). */
  windowFrames?: number;
  /** Monotonic time in ms; injectable for tests. */
  now?: () => number;
}

export interface PlayoutStats {
  framesOut: number;
  /** Frames that were short of audio and were padded with silence, in part or whole (underruns). */
  silenceFrames: number;
  /** Oldest audio discarded because the buffer was over maxMs. */
  droppedBytes: number;
  /** Deepest the buffer has been right after a push. */
  maxDepthBytes: number;
  /** Surplus audio discarded because a whole window went by without needing it (standing delay removed). */
  trimmedBytes: number;
  /** Audio that came after the pull it was due at had sent silence instead, discarded. */
  lateBytes: number;
  /** Times the pulls were asked to come earlier or later (see takePhaseShift). */
  phaseShifts: number;
}

/**
 * Slack kept between the latest caller frame's arrival and the pull that sends it: the media clock fires up to 1 ms
 * early and, busy, a millisecond or two late (clock.ts), and a frame's processing waits for whatever the event loop is
 * doing; at 2 ms the benchmark saw a frame miss its pull every ~10 s per call.
 */
const MARGIN_MS = 4;
/**
 * Pulls move earlier only on the latest arrival of this many windows (5 s), once per such span, and a late frame
 * starts a new span. One window's latest arrival wanders by several ms: tightening on each, the benchmark's pulls
 * hunted (a late frame, a discard and two moves every few seconds per call). Loosening stays immediate.
 */
const TIGHTEN_SPAN = 5;
/**
 * How long a late frame is remembered: tightening leaves room for the latest seen in this many windows (30 s), so a
 * sender late now and then settles at a slack that covers it instead of an underrun and a trim each time.
 */
const LATE_MEMORY_WINDOWS = 30;
/** Pushes whose arrival times are kept (each holds at least one byte; 60 ms of 20 ms frames needs 3). */
const ARRIVALS = 64;

/**
 * Re-chunks caller audio, which arrives in whatever chunk sizes Talkdesk sends, into exact RTP frames, and keeps the
 * delay it adds as small as the sender's jitter allows. No timers and no I/O: the media clock pulls one frame per tick,
 * and the buffer only reads the time. A fixed ring holds the audio, so push and pull only copy.
 *
 * Delay has two parts, each adapted once a window:
 * - surplus: whole frames that sit in the buffer after a burst. Once a whole window has gone by with that much audio
 *   never needed, it is dropped (a jitter buffer's "accelerate"); kept, it would be delay for the rest of the call.
 *   A single frame that misses its pull is not played late at all: silence went in its place, so it is discarded.
 * - phase: how long a frame waits for the next pull. takePhaseShift() tells the clock to move the pulls to MARGIN_MS
 *   after the latest arrival of the last 5 s (of the first second, at the start), and later again at once when a
 *   frame misses its pull; for the next 30 s the slack then keeps room for that frame's lateness.
 */
export class PlayoutBuffer {
  readonly stats: PlayoutStats = {
    framesOut: 0,
    silenceFrames: 0,
    droppedBytes: 0,
    maxDepthBytes: 0,
    trimmedBytes: 0,
    lateBytes: 0,
    phaseShifts: 0,
  };
  private readonly frameBytes: number;
  private readonly frameMs: number;
  private readonly windowFrames: number;
  private readonly now: () => number;
  /** A Buffer for its copy(), which moves bytes without allocating the views that set(subarray) would. */
  private readonly ring: Buffer;
  private head = 0;
  private depth = 0;
  /** Bytes ever stored and ever taken out (pulled, trimmed, dropped, cleared): bytesIn − bytesOut = depth. */
  private bytesIn = 0;
  private bytesOut = 0;
  /** When each push's audio arrived, oldest first: where it ends in bytesIn, and the time. */
  private readonly arrivalEnd = new Float64Array(ARRIVALS);
  private readonly arrivalAt = new Float64Array(ARRIVALS);
  private arrivalHead = 0;
  private arrivalCount = 0;

  private lastPullAt = 0;
  /** Pulls in a row that found less than a frame since the last full one: 1 means one frame missed its pull. */
  private shortPulls = 0;
  /** A pull has found a whole frame since the start or clear(): until then a short pull is no frame's lateness. */
  private flowing = false;
  /** Silence the last pull sent for audio that was late: that much of the next audio pushed is discarded. */
  private owedBytes = 0;
  private window = 0;
  /** Least audio left right after a pull, this window: the surplus nothing needed. */
  private minLeftBytes = Infinity;
  /**
   * Least time the newest byte of a pulled frame waited in the buffer, this window: how much sooner the pulls could
   * have come. It counts a standing frame too, so moving the pulls earlier also takes up a surplus a late frame left,
   * without dropping any audio.
   */
  private minWaitMs = Infinity;
  /** Most a frame missed its pull by, this window. */
  private maxLateMs = 0;
  private windowsSinceLate = 0;
  /**
   * Windows in the current tightening span, how many it needs (1 for the first, so a call aligns after 1 s), and the
   * least wait seen in it.
   */
  private spanWindows = 0;
  private spanLength = 1;
  private spanMinWaitMs = Infinity;
  /** Latest a frame has been in the last LATE_MEMORY_WINDOWS windows. */
  private rememberedLateMs = 0;
  private pendingShiftMs = 0;

  constructor(opts: PlayoutBufferOptions = {}) {
    this.frameBytes = opts.frameBytes ?? 160;
    this.frameMs = this.frameBytes / BYTES_PER_MS;
    this.windowFrames = opts.windowFrames ?? 50;
    this.now = opts.now ?? (() => performance.now());
    const maxMs = opts.maxMs ?? 60;
    if (!Number.isInteger(this.frameBytes) || this.frameBytes < 1) {
      throw new RangeError(`PlayoutBuffer: frameBytes must be a positive integer, got ${this.frameBytes}`);
    }
    const capacity = Math.floor(maxMs * BYTES_PER_MS);
    if (!(capacity >= this.frameBytes)) {
      throw new RangeError(`PlayoutBuffer: maxMs ${maxMs} holds less than one ${this.frameBytes}-byte frame`);
    }
    this.ring = Buffer.alloc(capacity);
  }

  get depthBytes(): number {
    return this.depth;
  }

  /** Appends audio; if that goes over maxMs, the oldest bytes (already buffered or at the front of this chunk) go. */
  push(mulaw: Uint8Array): void {
    const now = this.now();
    let src = mulaw;
    if (this.flowing && this.shortPulls === 1) {
      this.maxLateMs = Math.max(this.maxLateMs, now - this.lastPullAt);
      this.shortPulls = 0;
    }
    if (this.owedBytes > 0) {
      // The pull this audio missed already sent silence in its place (what a jitter buffer does with a packet past
      // its playout time): played now, it would put everything after it a frame behind for good.
      const late = Math.min(this.owedBytes, src.length);
      this.owedBytes -= late;
      this.stats.lateBytes += late;
      src = src.subarray(late);
    }
    if (src.length === 0) return;

    const cap = this.ring.length;
    if (src.length >= cap) {
      this.stats.droppedBytes += this.depth + src.length - cap;
      this.bytesOut += this.depth;
      this.head = 0;
      this.depth = 0;
      src = src.subarray(src.length - cap);
    } else if (this.depth + src.length > cap) {
      const excess = this.depth + src.length - cap;
      this.stats.droppedBytes += excess;
      this.bytesOut += excess;
      this.head = (this.head + excess) % cap;
      this.depth -= excess;
    }
    const tail = (this.head + this.depth) % cap;
    if (src.length <= cap - tail) {
      this.ring.set(src, tail);
    } else {
      const firstPart = cap - tail;
      this.ring.set(src.subarray(0, firstPart), tail);
      this.ring.set(src.subarray(firstPart), 0);
    }
    this.depth += src.length;
    if (this.depth > this.stats.maxDepthBytes) this.stats.maxDepthBytes = this.depth;

    this.bytesIn += src.length;
    if (this.arrivalCount === ARRIVALS) {
      // tiny chunks: the oldest arrival's bytes count as the next one's, which only makes their wait look shorter
      this.arrivalHead = (this.arrivalHead + 1) % ARRIVALS;
      this.arrivalCount--;
    }
    const slot = (this.arrivalHead + this.arrivalCount) % ARRIVALS;
    this.arrivalEnd[slot] = this.bytesIn;
    this.arrivalAt[slot] = now;
    this.arrivalCount++;
  }

  /** A new frame: buffered audio, padded with silence if there is not enough (counted as an underrun). */
  pull(): Buffer {
    const frame = Buffer.allocUnsafe(this.frameBytes);
    this.pullInto(frame, 0);
    return frame;
  }

  /**
   * Writes one frame into `target` at `offset` instead of allocating one, so the RTP sender can fill the packet it
   * is about to send directly: one allocation per packet instead of two.
   */
  pullInto(target: Uint8Array, offset: number): void {
    const now = this.now();
    const short = this.depth < this.frameBytes;
    if (!short) this.minWaitMs = Math.min(this.minWaitMs, now - this.arrivalOf(this.bytesOut + this.frameBytes - 1));
    this.shortPulls = short ? this.shortPulls + 1 : 0;
    if (!short) this.flowing = true;
    this.lastPullAt = now;

    const cap = this.ring.length;
    const n = Math.min(this.depth, this.frameBytes);
    const firstPart = Math.min(n, cap - this.head);
    this.ring.copy(target, offset, this.head, this.head + firstPart);
    if (firstPart < n) this.ring.copy(target, offset + firstPart, 0, n - firstPart);
    this.head = (this.head + n) % cap;
    this.depth -= n;
    this.bytesOut += n;
    // only the first short pull of a flowing stream stands in for audio on its way; after more, the caller paused
    this.owedBytes = this.flowing && this.shortPulls === 1 ? this.frameBytes - n : 0;
    if (n < this.frameBytes) {
      target.fill(MULAW_SILENCE, offset + n, offset + this.frameBytes);
      this.stats.silenceFrames++;
    }
    this.stats.framesOut++;

    if (this.depth < this.minLeftBytes) this.minLeftBytes = this.depth;
    if (++this.window >= this.windowFrames) this.adapt();
  }

  /**
   * How many ms the next pull should come later (positive) or earlier (negative) than one frame after this one; 0
   * when it is fine where it is. Decided once a window; reading it takes it.
   */
  takePhaseShift(): number {
    const shift = this.pendingShiftMs;
    this.pendingShiftMs = 0;
    return shift;
  }

  /** Drops everything buffered (not counted as dropped: the caller chose to, e.g. on a barge-in or hold). */
  clear(): void {
    this.head = 0;
    this.depth = 0;
    this.bytesOut = this.bytesIn;
    this.arrivalCount = 0;
    this.shortPulls = 0;
    this.owedBytes = 0;
    this.flowing = false;
    this.resetWindow();
    this.newSpan(1);
  }

  private adapt(): void {
    const surplus = this.minLeftBytes - (this.minLeftBytes % this.frameBytes);
    if (surplus > 0) {
      this.head = (this.head + surplus) % this.ring.length;
      this.depth -= surplus;
      this.bytesOut += surplus;
      this.stats.trimmedBytes += surplus;
    }
    let shift = 0;
    this.spanMinWaitMs = Math.min(this.spanMinWaitMs, this.minWaitMs);
    if (this.maxLateMs > 0) {
      shift = Math.min(this.maxLateMs + MARGIN_MS, this.frameMs);
      this.windowsSinceLate = 0;
      this.rememberedLateMs = Math.max(this.rememberedLateMs, this.maxLateMs);
      this.newSpan(TIGHTEN_SPAN);
    } else {
      if (++this.windowsSinceLate >= LATE_MEMORY_WINDOWS) this.rememberedLateMs = 0;
      if (++this.spanWindows >= this.spanLength) {
        const slackMs = MARGIN_MS + this.rememberedLateMs;
        // beyond the slack plus a margin only, so clock steps of about the margin cannot make it hunt back and forth
        if (this.spanMinWaitMs !== Infinity && this.spanMinWaitMs > slackMs + MARGIN_MS) {
          shift = slackMs - Math.min(this.spanMinWaitMs, this.frameMs);
        }
        this.newSpan(TIGHTEN_SPAN);
      }
    }
    if (shift !== 0) {
      this.pendingShiftMs = shift;
      this.stats.phaseShifts++;
    }
    this.resetWindow();
  }

  /** When the audio byte `index` (counted over all bytes ever stored) was pushed; drops arrivals already pulled. */
  private arrivalOf(index: number): number {
    while (this.arrivalCount > 1 && this.arrivalEnd[this.arrivalHead]! <= this.bytesOut) {
      this.arrivalHead = (this.arrivalHead + 1) % ARRIVALS;
      this.arrivalCount--;
    }
    for (let i = 0; i < this.arrivalCount; i++) {
      const slot = (this.arrivalHead + i) % ARRIVALS;
      if (this.arrivalEnd[slot]! > index) return this.arrivalAt[slot]!;
    }
    return this.arrivalAt[(this.arrivalHead + this.arrivalCount - 1) % ARRIVALS]!;
  }

  private newSpan(length: number): void {
    this.spanWindows = 0;
    this.spanLength = length;
    this.spanMinWaitMs = Infinity;
  }

  private resetWindow(): void {
    this.window = 0;
    this.minLeftBytes = Infinity;
    this.minWaitMs = Infinity;
    this.maxLateMs = 0;
  }
}
