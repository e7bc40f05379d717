import { magnitudeSum, SILENCE_MEAN_MAGNITUDE } from './silence.js';

/** μ-law encodes silence (zero amplitude) as 0xFF. */
const MULAW_SILENCE = 0xff;
/** G.711 at 8 kHz: one byte per sample, 8 samples per ms. */
const BYTES_PER_MS = 8;

export interface PlayoutBufferOptions {
  /** Bytes per frame; 160 = 20 ms of PCMU. */
  frameBytes?: number;
  /**
   * The hard cap: most caller audio held. Past it the oldest frames go, and those that held sound are counted as
   * speech lost. It must hold the longest TCP stall to be ridden out without loss (default 1000 ms).
   */
  maxMs?: number;
  /** Pulls per adaptation window (default 50: 1 s). */
  windowFrames?: number;
  /** Monotonic time in ms; injectable for tests. */
  now?: () => number;
  /**
   * How long this process has kept audio that is read now from being read (the media clock's behindMs); asked only
   * when audio comes after a pull that missed it. That much of its lateness was ours, not its sender's: a stall of
   * the gateway's own (a GC pause, a burst of call setups) says nothing about the sender's jitter, and a cushion
   * grown for it would delay the call for 10 s and more. Default: none.
   */
  heldUpMs?: () => number;
}

export interface PlayoutStats {
  framesOut: number;
  /**
   * Frames of silence sent in place of caller audio: it had not arrived yet (an underrun, the audio plays when it
   * comes), or a pause was stretched to rebuild the cushion.
   */
  silenceInsertedFrames: number;
  /** Silent caller frames skipped to take delay back, or dropped at the cap. */
  silenceRemovedFrames: number;
  /** Caller frames that held sound and were dropped at the cap: the only audio this buffer ever loses. */
  speechLostFrames: number;
  /** Times a pull found too little audio while the caller's audio was flowing: it came late. */
  underruns: number;
  /**
   * Most audio a pull found waiting, and when (the `now` option's time; -1 before any pull found audio): the delay
   * audio that was sent had in this buffer. Audio dropped unsent (clear(): the call's end, hold) never counts: pushed
   * in the moment a call ends, before the BYE behind it in the same batch of I/O is read, it was delay to nobody.
   */
  maxDepthBytes: number;
  maxDepthAt: number;
  /** Times the pulls were asked to move (see takePhaseShift). */
  phaseShifts: number;
}

/**
 * Slack kept between the latest caller frame's arrival and the pull that sends it: the media clock fires up to 1 ms
 * early and, busy, a millisecond or two late (clock.ts), and a frame's processing waits for whatever the event loop is
 * doing; at 2 ms the benchmark saw a frame miss its pull every ~10 s per call.
 */
const MARGIN_MS = 4;
/**
 * Pulls move earlier only on the least wait of this many windows (5 s). One window's least wait wanders by several ms:
 * tightening on each, the benchmark's pulls hunted. A call's first phase is wherever its clock slot fell, though, and
 * the first window's least wait is often spoiled by call setup on a busy gateway: for its first this-many windows a
 * call decides on each one, so it aligns after a second or two, not after six (of 200 calls set up at 100 a second,
 * a sixth waited 10 ms too long for 5 s: docs/benchmarks/clock-under-load.md).
 */
const TIGHTEN_SPAN = 5;
/**
 * The cushion shrinks by a frame after this long if every frame meanwhile would still have been in time with a frame
 * less: it follows the sender's jitter down slowly, and a sender that needs all of it (a slow clock, talking) keeps it.
 * A shrink that an underrun proves wrong within that time doubles it, up to CUSHION_HOLD_MAX_MS: a sender whose need
 * varies (a slow clock beating against ours) has a word cut a handful of times a call, not every 10 s.
 */
const CUSHION_HOLD_MS = 10_000;
const CUSHION_HOLD_MAX_MS = 160_000;
/**
 * How long a late frame is remembered: the pulls keep the room it needed (onLate) and, after MOVES_PER_MEMORY of
 * them, another grows the cushion. At first this long; a lateness soon after the memory lapsed (within as long again)
 * doubles it, up to LATE_MEMORY_MAX_MS, so a sender that is late now and then keeps its room while a single stall of
 * the sender's costs its lateness for 10 s, not 30 (at 200 calls, one 12-16 ms stall of the load generator's kept
 * every call it hit 16-20 ms late for the rest of the 20 s window).
 */
const LATE_MEMORY_MS = 10_000;
const LATE_MEMORY_MAX_MS = 160_000;
/**
 * Latenesses within the late memory that may move the pulls within the frame; the next grows the cushion. A sender
 * whose clock is slow comes late again and again, a few ms each time: moved each time, a 6 % slow one had a word cut
 * 24 times in its first 12 s; with the third growing the cushion, 6 times in 3 minutes (playout.test.ts).
 */
const MOVES_PER_MEMORY = 2;
/** Pushes whose arrival times are kept (each holds at least one byte). */
const ARRIVALS = 64;

/**
 * The caller's playout buffer: re-chunks audio that arrives over Talkdesk's WebSocket, in whatever chunk sizes and at
 * whatever times TCP delivers it, into exact RTP frames, one per media-clock pull. No timers and no I/O: the clock
 * pulls, and the buffer only reads the time.
 *
 * A WebSocket delivers every byte, in order: lateness is not loss, and caller speech is never discarded to keep a
 * schedule (a jitter buffer for RTP drops late packets; this is not one).
 * - A pull that finds too little audio sends silence, and the late audio plays when it comes. While no cushion is
 *   kept, a small lateness moves the pulls: the next comes as that audio did, and the grid stays that much later
 *   while the lateness is remembered (LATE_MEMORY_MS), so a sender late like that again is covered at the cost of
 *   its lateness; another moves them on, as long as they stay within a frame of the earliest audio (onLate).
 *   Lateness that was all this process's own (the heldUpMs option) is not the sender's: the audio plays at the next
 *   pull, and the frame that leaves standing goes at the next silence. More lateness plays the audio a frame after
 *   the pull it missed and grows the cushion (audio kept back after each pull) by a frame. The cushion shrinks by a
 *   frame after CUSHION_HOLD_MS in which it was never needed.
 * - Delay is taken back only in silence (isSilentFrame: below about −54 dBov), a frame a pull at most: once a whole
 *   window has gone by with audio beyond the cushion never needed, that much may go, a silent frame at a time. Below
 *   the cushion, a silent frame is stretched instead (silence sent, the audio kept), so the cushion is rebuilt in a
 *   pause rather than by a gap in a word. A slow sender gets longer pauses, a fast one shorter ones.
 * - Past the hard cap (maxMs), the oldest frames go; those that held sound are counted as speech lost.
 * - Whole frames only: a partial frame waits for its rest (a 20 ms frame is never split across two packets with
 *   silence between), unless no audio has come for two frames, when it is padded and sent.
 * - Phase: takePhaseShift() asks the clock to move the pulls to MARGIN_MS (plus a late frame's lateness, while it
 *   is remembered) after the frames' arrival, only ever within a frame (the least wait modulo a frame), since whole
 *   frames of delay are the removal's to take back.
 */
export class PlayoutBuffer {
  readonly stats: PlayoutStats = {
    framesOut: 0,
    silenceInsertedFrames: 0,
    silenceRemovedFrames: 0,
    speechLostFrames: 0,
    underruns: 0,
    maxDepthBytes: 0,
    maxDepthAt: -1,
    phaseShifts: 0,
  };
  private readonly frameBytes: number;
  private readonly frameMs: number;
  private readonly windowFrames: number;
  private readonly now: () => number;
  private readonly heldUpMs: () => number;
  /** The summed magnitude at or below which a frame is silent (silence.ts). */
  private readonly silenceLimit: number;
  /** A Buffer for its copy(), which moves bytes without allocating the views that set(subarray) would. */
  private readonly ring: Buffer;
  private readonly maxCushionBytes: number;
  private head = 0;
  private depth = 0;
  /** Bytes ever stored and ever taken out (pulled, removed, dropped, cleared): bytesIn − bytesOut = depth. */
  private bytesIn = 0;
  private bytesOut = 0;
  /** When each push's audio arrived, oldest first: where it ends in bytesIn, and the time. */
  private readonly arrivalEnd = new Float64Array(ARRIVALS);
  private readonly arrivalAt = new Float64Array(ARRIVALS);
  private arrivalHead = 0;
  private arrivalCount = 0;
  private lastPushAt = -Infinity;

  /** A pull has sent caller audio since the start or clear(): only then is a short pull an underrun. */
  private flowing = false;
  /** The last pull found too little audio: the underrun it began is counted once. */
  private starved = false;
  /** When the pull that began the underrun ran; its audio's lateness is measured from there when it comes. */
  private starvedAt = 0;
  private lateUnmeasured = false;
  /** How long a lateness is remembered now (LATE_MEMORY_MS, doubled for a sender late again soon after). */
  private lateMemoryMs = LATE_MEMORY_MS;
  /** Latenesses within lateMemoryMs that moved the pulls rather than grow the cushion. */
  private latenessesMoved = 0;
  /** The latest a frame has been within lateMemoryMs, and when. */
  private rememberedLateMs = 0;
  private lateAt = -Infinity;
  /** Audio kept back after each pull, whole frames: the jitter the sender has shown. */
  private cushionBytes = 0;
  /** When the cushion last grew or was last looked at for shrinking, and the least wait of a pulled frame since. */
  private cushionCheckedAt = 0;
  private minWaitSinceCheck = Infinity;
  private cushionHoldMs = CUSHION_HOLD_MS;
  private cushionShrunkAt = -Infinity;
  /** Delay that may still be taken back by removing silent frames, decided once a window. */
  private removableBytes = 0;
  /** Audio left standing by pulls the clock did not make where asked (pullsMoved): taken back at the next silence. */
  private unplannedBytes = 0;

  private window = 0;
  /** Least audio left right after a pull, this window: the part of the delay nothing needed. */
  private minLeftBytes = Infinity;
  /** Least time the newest byte of a pulled frame waited in the buffer, this window and this span. */
  private minWaitMs = Infinity;
  private spanMinWaitMs = Infinity;
  private spanWindows = 0;
  private spanLength = 1;
  /** Spans decided since clear(): the first TIGHTEN_SPAN are a window each (see TIGHTEN_SPAN). */
  private spansSinceClear = 0;
  private pendingShiftMs = 0;

  constructor(opts: PlayoutBufferOptions = {}) {
    this.frameBytes = opts.frameBytes ?? 160;
    this.frameMs = this.frameBytes / BYTES_PER_MS;
    this.windowFrames = opts.windowFrames ?? 50;
    this.now = opts.now ?? (() => performance.now());
    this.heldUpMs = opts.heldUpMs ?? (() => 0);
    const maxMs = opts.maxMs ?? 1000;
    if (!Number.isInteger(this.frameBytes) || this.frameBytes < 1) {
      throw new RangeError(`PlayoutBuffer: frameBytes must be a positive integer, got ${this.frameBytes}`);
    }
    const capacity = Math.floor(maxMs * BYTES_PER_MS);
    if (!(capacity >= this.frameBytes)) {
      throw new RangeError(`PlayoutBuffer: maxMs ${maxMs} holds less than one ${this.frameBytes}-byte frame`);
    }
    this.ring = Buffer.alloc(capacity);
    this.silenceLimit = SILENCE_MEAN_MAGNITUDE * this.frameBytes;
    // a quarter of the cap at most (250 ms by default: a 6 % slow sender's deficit over 4 s of talk), so that a
    // stall as long as half the cap still fits on top of it and of the backlog earlier stalls left
    this.maxCushionBytes = Math.floor(capacity / 4 / this.frameBytes) * this.frameBytes;
  }

  get depthBytes(): number {
    return this.depth;
  }

  /** Appends audio; past the cap the oldest whole frames go first (counted as speech lost or silence removed). */
  push(mulaw: Uint8Array): void {
    if (mulaw.length === 0) return;
    const now = this.now();
    this.lastPushAt = now;
    if (this.lateUnmeasured) {
      this.lateUnmeasured = false;
      this.onLate(now - this.starvedAt - this.heldUpMs(), now);
    }
    const cap = this.ring.length;
    let src = mulaw;
    if (this.depth + src.length > cap) {
      const excess = this.depth + src.length - cap;
      if (excess >= this.depth) {
        this.dropHead(this.depth);
        const fromChunk = src.length - cap;
        if (fromChunk > 0) {
          this.countDropped(src, 0, fromChunk);
          src = src.subarray(fromChunk);
        }
      } else {
        this.dropHead(Math.min(this.depth, Math.ceil(excess / this.frameBytes) * this.frameBytes));
      }
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

  /** A new frame (see pullInto). */
  pull(): Buffer {
    const frame = Buffer.allocUnsafe(this.frameBytes);
    this.pullInto(frame, 0);
    return frame;
  }

  /**
   * Writes the next frame into `target` at `offset`, so the RTP sender fills the packet it is about to send: caller
   * audio, or silence in its place (see the class comment for which).
   */
  pullInto(target: Uint8Array, offset: number): void {
    const now = this.now();
    const F = this.frameBytes;
    if (this.depth > this.stats.maxDepthBytes) {
      this.stats.maxDepthBytes = this.depth;
      this.stats.maxDepthAt = now;
    }
    if ((this.removableBytes >= F || this.unplannedBytes >= F) && this.depth - 2 * F >= this.cushionBytes && this.headIsSilent()) {
      // delay nothing needed for a window, or that no move asked for, taken back in silence: a pause gets 20 ms shorter
      this.skip(F);
      this.removableBytes = Math.max(0, this.removableBytes - F);
      this.unplannedBytes = Math.max(0, this.unplannedBytes - F);
      this.stats.silenceRemovedFrames++;
    }
    if (this.depth >= F && this.depth - F < this.cushionBytes && this.headIsSilent()) {
      // below the cushion: rebuild it in a pause, where 20 ms more silence costs the caller nothing
      this.sendSilence(target, offset);
    } else if (this.depth >= F || (this.depth > 0 && now - this.lastPushAt >= 2 * this.frameMs)) {
      // less the frames a move of the clock's left standing (pullsMoved): they go at the next silence, and are no
      // part of where the pulls sit
      const waitMs = now - this.arrivalOf(this.bytesOut + Math.min(this.depth, F) - 1) - this.unplannedBytes / BYTES_PER_MS;
      if (waitMs < this.minWaitMs) this.minWaitMs = waitMs;
      if (waitMs < this.minWaitSinceCheck) this.minWaitSinceCheck = waitMs;
      const n = Math.min(this.depth, F);
      this.copyOut(target, offset, n);
      if (n < F) target.fill(MULAW_SILENCE, offset + n, offset + F);
      this.flowing = true;
      this.starved = false;
    } else {
      if (this.flowing && !this.starved) {
        this.starved = true;
        this.starvedAt = now;
        this.lateUnmeasured = true;
        this.stats.underruns++;
      }
      this.sendSilence(target, offset);
    }
    this.stats.framesOut++;
    if (this.depth < this.minLeftBytes) this.minLeftBytes = this.depth;
    if (++this.window >= this.windowFrames) this.adapt(now);
  }

  /**
   * How many ms the next pull should come later (positive) or earlier (negative) than one frame after the last one;
   * 0 when it is fine where it is. Decided once a span after a pull, and at a push that brought late audio (so read
   * it after push() too: the next pull is then due sooner); reading it takes it.
   */
  takePhaseShift(): number {
    const shift = this.pendingShiftMs;
    this.pendingShiftMs = 0;
    return shift;
  }

  /**
   * Where the clock put the pulls that takePhaseShift() asked to move by `askedMs`: `movedMs` later than a frame after
   * the last (MediaClock's shift). The clock keeps a call within half a frame of its first grid, so that its send
   * times stay with its RTP timestamps, and every move this buffer asks is earlier (a late frame's too: the next
   * pull comes sooner after the silence that stood in for it), so now and then it makes the move the other way round,
   * a frame later: a pull fewer, and a frame of audio more waits than this buffer planned. That frame goes at the next
   * silent frame, without waiting a window to see that nothing needs it.
   */
  pullsMoved(askedMs: number, movedMs: number): void {
    const framesLater = Math.round((movedMs - askedMs) / this.frameMs);
    if (framesLater > 0) this.unplannedBytes += framesLater * this.frameBytes;
  }

  /** Drops everything buffered (not counted: the caller chose to, e.g. audio from before the answer, or on hold). */
  clear(): void {
    this.head = 0;
    this.depth = 0;
    this.bytesOut = this.bytesIn;
    this.arrivalCount = 0;
    this.flowing = false;
    this.starved = false;
    this.lateUnmeasured = false;
    this.removableBytes = 0;
    this.unplannedBytes = 0;
    this.resetWindow();
    this.spansSinceClear = 0;
    this.newSpan(1);
  }

  /**
   * The audio a pull missed came `lateMs` after it; silence has gone in its place. Played at the next pull, it and
   * everything after it would wait a frame more until that standing frame went in a silence. While no cushion is kept,
   * a lateness that leaves the pulls within a frame of the earliest audio moves them instead: the next one comes as
   * this audio did (not a frame after the missed pull), and the grid stays that much later, so the delay grows by the
   * lateness, not by a frame. The margin is already in it: the missed pull came the margin after the earliest audio,
   * and this audio's lateness counts from there (a margin more, as before, kept every call at 200 calls 4 ms later
   * after one stall of the load generator's). A second such lateness while the first is remembered moves them on
   * from where the first left them (at 200 calls, most of them came less than 2 ms after their pull: a whole frame
   * for each cost a tenth of the calls 20 ms for 10 s and more). Anything more grows the cushion by a frame, but a
   * first lateness only if the sender has needed a cushion before.
   */
  private onLate(lateMs: number, now: number): void {
    // all of it ours: the sender kept time; the frame the silence left standing goes at the next silent frame
    if (lateMs <= 0) {
      this.unplannedBytes += this.frameBytes;
      return;
    }
    const sinceLastMs = now - this.lateAt;
    const recent = sinceLastMs < this.lateMemoryMs;
    // late again soon after the room was given up: keep it longer next time
    if (!recent && sinceLastMs < 2 * this.lateMemoryMs) this.lateMemoryMs = Math.min(2 * this.lateMemoryMs, LATE_MEMORY_MAX_MS);
    // where the pulls sit within a frame after the earliest audio: the least wait of this span, or for a first
    // lateness where adapt() keeps them, the margin
    const phaseMs = recent ? Math.min(this.minWaitMs, this.spanMinWaitMs) % this.frameMs : MARGIN_MS;
    this.lateAt = now;
    if (!recent) this.latenessesMoved = 0;
    if (this.cushionBytes === 0 && this.latenessesMoved < MOVES_PER_MEMORY && phaseMs + lateMs < this.frameMs) {
      this.latenessesMoved++;
      // the late audio came phase + lateness after the earliest: the pulls keep room for it beyond the margin (which
      // adapt() adds back) while it is remembered
      this.rememberedLateMs = Math.max(recent ? this.rememberedLateMs : 0, phaseMs + lateMs - MARGIN_MS);
      this.pendingShiftMs = lateMs - this.frameMs;
      this.stats.phaseShifts++;
      return;
    }
    this.rememberedLateMs = recent ? Math.max(this.rememberedLateMs, lateMs) : lateMs;
    // a first lateness too large for that, from a sender that has never needed a cushion: one stall says little of
    // the next (at 200 calls, the load generator's made a tenth of the calls wait 20 ms more for 20 s); the audio
    // plays late, the frames it leaves standing go in the next pauses, and only a second one grows the cushion
    if (!recent && this.cushionBytes === 0) return;
    if (now - this.cushionShrunkAt < this.cushionHoldMs) this.cushionHoldMs = Math.min(2 * this.cushionHoldMs, CUSHION_HOLD_MAX_MS);
    this.cushionBytes = Math.min(this.cushionBytes + this.frameBytes, this.maxCushionBytes);
    this.cushionCheckedAt = now;
    this.minWaitSinceCheck = Infinity;
  }

  private adapt(now: number): void {
    const F = this.frameBytes;
    if (now - this.cushionCheckedAt >= this.cushionHoldMs) {
      // every frame waited a frame or more: with a frame less, none would have missed its pull
      if (this.cushionBytes > 0 && this.minWaitSinceCheck >= this.frameMs) {
        this.cushionBytes -= F;
        this.cushionShrunkAt = now;
      }
      this.cushionCheckedAt = now;
      this.minWaitSinceCheck = Infinity;
    }
    // audio that was always left after a pull, and frames that always waited a frame more than the margin: a frame
    // left standing only because the next one came with its pull is not surplus, it holds the margin
    const waitedFrames = Math.floor((this.minWaitMs - MARGIN_MS) / this.frameMs);
    const surplus = Math.min(this.minLeftBytes, waitedFrames * F) - this.cushionBytes;
    this.removableBytes = surplus >= F ? surplus - (surplus % F) : 0;

    this.spanMinWaitMs = Math.min(this.spanMinWaitMs, this.minWaitMs);
    if (++this.spanWindows >= this.spanLength) {
      // within a frame only: whole frames of wait are standing audio, which removal takes back in silence
      let waitMs = this.spanMinWaitMs % this.frameMs;
      // less than the margin within the frame, but a frame more stood: the pulls are a frame and that late
      if (waitMs < MARGIN_MS && this.spanMinWaitMs - this.cushionBytes / BYTES_PER_MS >= this.frameMs) waitMs += this.frameMs;
      const slackMs = MARGIN_MS + (now - this.lateAt < this.lateMemoryMs ? this.rememberedLateMs : 0);
      // beyond the slack plus the margin only, so clock steps of about the margin cannot make it hunt
      if (this.spanMinWaitMs !== Infinity && waitMs > slackMs + MARGIN_MS && this.pendingShiftMs === 0) {
        this.pendingShiftMs = slackMs - waitMs;
        this.stats.phaseShifts++;
      }
      this.newSpan(++this.spansSinceClear < TIGHTEN_SPAN ? 1 : TIGHTEN_SPAN);
    }
    this.resetWindow();
  }

  private headIsSilent(): boolean {
    const cap = this.ring.length;
    const first = Math.min(this.frameBytes, cap - this.head);
    const limit = this.silenceLimit;
    const sum = magnitudeSum(this.ring, this.head, this.head + first, limit);
    return sum <= limit && magnitudeSum(this.ring, 0, this.frameBytes - first, limit - sum) <= limit - sum;
  }

  private sendSilence(target: Uint8Array, offset: number): void {
    target.fill(MULAW_SILENCE, offset, offset + this.frameBytes);
    this.stats.silenceInsertedFrames++;
  }

  private copyOut(target: Uint8Array, offset: number, n: number): void {
    const cap = this.ring.length;
    const firstPart = Math.min(n, cap - this.head);
    this.ring.copy(target, offset, this.head, this.head + firstPart);
    if (firstPart < n) this.ring.copy(target, offset + firstPart, 0, n - firstPart);
    this.skip(n);
  }

  private skip(n: number): void {
    this.head = (this.head + n) % this.ring.length;
    this.depth -= n;
    this.bytesOut += n;
  }

  /** Drops `n` bytes from the head, frame by frame, each counted by what it held. */
  private dropHead(n: number): void {
    const F = this.frameBytes;
    for (let left = n; left > 0; left -= F) {
      const bytes = Math.min(F, left);
      if (bytes === F && this.headIsSilent()) this.stats.silenceRemovedFrames++;
      else this.stats.speechLostFrames++;
      this.skip(bytes);
    }
  }

  /** Counts `n` bytes of `chunk` from `from` that never entered the buffer, frame by frame. */
  private countDropped(chunk: Uint8Array, from: number, n: number): void {
    const F = this.frameBytes;
    for (let at = from; at < from + n; at += F) {
      const bytes = Math.min(F, from + n - at);
      if (magnitudeSum(chunk, at, at + bytes, this.silenceLimit) <= (this.silenceLimit * bytes) / F) this.stats.silenceRemovedFrames++;
      else this.stats.speechLostFrames++;
    }
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
  }
}
