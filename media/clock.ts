import type { Logger } from 'pino';
import { LogLimiter } from './log-limiter.js';
import { LatencyHistogram } from './stats.js';

/** Something that must run once per media frame, e.g. one call's RTP sender. */
export interface FrameSink {
  onFrame(): void;
}

export interface MediaClockOptions {
  /** Frame length; 20 ms is one 160-byte PCMU packet. */
  frameMs?: number;
  /** Phases per frame: sinks are spread over `slots` steps of frameMs/slots each. */
  slots?: number;
  /** Monotonic time source in ms; injectable for tests. */
  now?: () => number;
  /** Where sink errors and resyncs are reported (rate-limited); silent without one. */
  log?: Logger;
  /**
   * Whether a step found more than DEFER_AFTER_MS late waits for the I/O that came meanwhile (default true): right for
   * sinks that send what that I/O brings (the playout buffers). A clock whose sinks only send, on a schedule of their
   * own (a load generator's callers and bots), gains nothing by waiting and would send a whole I/O batch later; with
   * false its late steps run at once, and poll() runs a due step however late it is.
   */
  deferLateSteps?: boolean;
}

export interface MediaClockStats {
  /** How late frames were delivered against their ideal time t0 + k·step (negative: up to 1 ms early). */
  lateness: { count: number; maxMs: number; p50Ms: number; p99Ms: number };
  /** onFrame calls made. */
  frames: number;
  /** Times the clock fell more than MAX_CATCH_UP_FRAMES behind and skipped ahead. */
  resyncs: number;
  /** Frames not delivered because of those resyncs (sinks × skipped steps of their slot). */
  skippedFrames: number;
  /** onFrame calls that threw. */
  sinkErrors: number;
}

/** A sink's place on the clock. */
export interface ClockSubscription {
  /** Idempotent. */
  remove(): void;
  /**
   * Moves the sink's frames by `deltaMs` from its last one (later if positive), whole steps of frameMs/slots:
   * rounded away from zero when later, toward zero when earlier, and less than one frame either way. The next frame
   * comes frameMs + delta after the last; the grid stays exact from there on.
   *
   * The sink never strays more than half a frame from the grid it was added on: a move past that is made the other
   * way round instead (earlier by d becomes later by frameMs − d), so a sink that keeps asking to move one way
   * cannot drift its send times away from its media's timestamps (which count frames, not moves).
   *
   * Returns how much later than one frame after the last its next frame comes (0 if it did not move): a frame more
   * than asked when the move went the other way round, or when it was asked too late for the step it wanted.
   */
  shift(deltaMs: number): number;
}

interface Entry {
  readonly sink: FrameSink;
  slot: number;
  /** First step index this sink is due at; earlier visits of its slot are skipped. */
  firstStep: number;
  /** Step it was last served at; -1 before its first frame. */
  lastStep: number;
  /** Steps it has been moved from the grid it was added on, within [−slots/2, slots/2). */
  offsetSteps: number;
  active: boolean;
}

/** Catching up sends a burst; beyond 10 frames (200 ms) the far end's jitter buffer has discarded them anyway. */
const MAX_CATCH_UP_FRAMES = 10;
/**
 * libuv timers run on a whole-millisecond loop clock, so they fire up to ~1 ms early against performance.now();
 * treating such a step as due saves a 1 ms re-arm that would make it late instead (sip-notes §5: p50 is slightly
 * negative for this reason).
 */
const EARLY_TOLERANCE_MS = 1;
/**
 * A timer this late means the event loop was held up (a GC pause, a burst of work): what arrived meanwhile, the
 * callers' audio on their WebSockets among it, waits in the poll phase, which libuv runs after the timers. The due
 * frames then go from a setImmediate, after that I/O, so a pull does not find a playout buffer empty of audio that
 * came in time and send silence for it (issue 12: every call on the machine saw a late frame at each stall).
 */
const DEFER_AFTER_MS = 2;

/**
 * The one media clock of the process. setInterval drifts (Node re-arms it from the truncated time its callback
 * ran: 1–4 % too few packets, sip-notes §5), so this is a single setTimeout chain over absolute times t0 + k·step.
 * Step k serves slot k mod slots, so each sink stays on its own exact frame grid and each step sends only ~1/slots
 * of the packets: p99 lateness < 1 ms up to ~500 calls, against ~5 ms for one burst of all calls.
 */
export class MediaClock {
  private readonly frameMs: number;
  private readonly stepMs: number;
  private readonly slotCount: number;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  /** DEFER_AFTER_MS, or Infinity when late steps are not deferred (deferLateSteps false) */
  private readonly deferAfterMs: number;
  private readonly logLimit: LogLimiter;
  /** Copy-on-write per slot, so add/remove/shift from inside onFrame never disturbs the iteration in progress. */
  private readonly slots: Entry[][];
  private sinkCount = 0;
  private t0 = 0;
  private nextStep = 0;
  private scheduledStep = 0;
  /** t0 + scheduledStep · stepMs: when the armed timer's step is due, for poll() to compare against */
  private scheduledAtMs = Infinity;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private ticking = false;

  private readonly lateness = new LatencyHistogram(-2, 100, 0.1);
  private frames = 0;
  private resyncs = 0;
  private skippedFrames = 0;
  private sinkErrors = 0;

  constructor(opts: MediaClockOptions = {}) {
    this.frameMs = opts.frameMs ?? 20;
    this.slotCount = opts.slots ?? 10;
    if (!(this.frameMs > 0)) throw new RangeError(`MediaClock: frameMs must be > 0, got ${this.frameMs}`);
    if (!Number.isInteger(this.slotCount) || this.slotCount < 1) {
      throw new RangeError(`MediaClock: slots must be a positive integer, got ${this.slotCount}`);
    }
    this.stepMs = this.frameMs / this.slotCount;
    this.now = opts.now ?? (() => performance.now());
    this.log = opts.log;
    this.deferAfterMs = opts.deferLateSteps === false ? Infinity : DEFER_AFTER_MS;
    this.logLimit = new LogLimiter(10_000, this.now);
    this.slots = Array.from({ length: this.slotCount }, () => []);
  }

  /**
   * Registers a sink in the least-loaded slot. Its first frame is at the first step of that slot that is at least
   * one frameMs after now (so between one and two frames from now), giving the caller a frame to buffer audio.
   */
  add(sink: FrameSink): ClockSubscription {
    const t = this.now();
    if (this.sinkCount === 0 && this.timer === null && this.immediate === null && !this.ticking) {
      // Idle: nothing is on the old grid any more, so start a fresh one rather than "catch up" the idle time.
      this.t0 = t;
      this.nextStep = 0;
    }
    let slot = 0;
    for (let s = 1; s < this.slotCount; s++) if (this.slots[s]!.length < this.slots[slot]!.length) slot = s;

    const earliest = Math.max(this.nextStep, Math.ceil((t + this.frameMs - this.t0) / this.stepMs));
    const firstStep = earliest + ((slot - (earliest % this.slotCount) + this.slotCount) % this.slotCount);
    const entry: Entry = { sink, slot, firstStep, lastStep: -1, offsetSteps: 0, active: true };
    this.slots[slot] = [...this.slots[slot]!, entry];
    this.sinkCount++;
    this.dueAt(firstStep);

    return {
      remove: () => {
        if (!entry.active) return;
        entry.active = false;
        this.slots[entry.slot] = this.slots[entry.slot]!.filter((e) => e !== entry);
        this.sinkCount--;
        if (this.sinkCount === 0) {
          clearTimeout(this.timer ?? undefined);
          clearImmediate(this.immediate ?? undefined);
          this.timer = null;
          this.immediate = null;
        }
      },
      shift: (deltaMs) => this.shift(entry, deltaMs),
    };
  }

  private shift(entry: Entry, deltaMs: number): number {
    const n = this.slotCount;
    const raw = deltaMs / this.stepMs;
    let steps = Math.max(-(n - 1), Math.min(n - 1, raw > 0 ? Math.ceil(raw) : Math.trunc(raw)));
    if (!entry.active || entry.lastStep < 0 || !(Math.abs(steps) >= 1)) return 0;
    const offset = entry.offsetSteps + steps;
    if (offset < -n / 2) steps += n;
    else if (offset >= n / 2) steps -= n;
    if (steps === 0) return 0;
    entry.offsetSteps += steps;
    let firstStep = entry.lastStep + n + steps;
    // called late (not from inside its own onFrame): never into a step the clock has already passed
    while (firstStep < this.nextStep) firstStep += n;
    const slot = firstStep % n;
    this.slots[entry.slot] = this.slots[entry.slot]!.filter((e) => e !== entry);
    this.slots[slot] = [...this.slots[slot]!, entry];
    entry.slot = slot;
    entry.firstStep = firstStep;
    this.dueAt(firstStep);
    return (firstStep - entry.lastStep - n) * this.stepMs;
  }

  /** A sink is due at `step`: arm the timer for it if nothing sooner is armed. */
  private dueAt(step: number): void {
    if (this.timer !== null && step < this.scheduledStep) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.timer === null && this.immediate === null && !this.ticking) this.schedule();
  }

  get size(): number {
    return this.sinkCount;
  }

  /** Sinks on the busiest slot: one step's work. About size / slots while the phases stay spread. */
  get busiestSlot(): number {
    let most = 0;
    for (const entries of this.slots) most = Math.max(most, entries.length);
    return most;
  }

  get stats(): MediaClockStats {
    const h = this.lateness;
    return {
      lateness: { count: h.count, maxMs: h.maxValueMs, p50Ms: h.percentile(50), p99Ms: h.percentile(99) },
      frames: this.frames,
      resyncs: this.resyncs,
      skippedFrames: this.skippedFrames,
      sinkErrors: this.sinkErrors,
    };
  }

  /** The lateness histogram as Prometheus wants it: cumulative counts at `le` edges (ms), total and sum. */
  latenessBuckets(edgesMs: readonly number[]): { counts: number[]; count: number; sumMs: number } {
    const h = this.lateness;
    return { counts: h.countsAtOrBelow(edgesMs), count: h.count, sumMs: h.sumMs };
  }

  private schedule(): void {
    // Arm for the next step that has sinks: with a handful of calls that is ~50 wakeups/s per used slot, not 500.
    let k = this.nextStep;
    for (let i = 1; i < this.slotCount && this.slots[k % this.slotCount]!.length === 0; i++) k++;
    this.scheduledStep = k;
    this.scheduledAtMs = this.t0 + k * this.stepMs;
    const delay = this.scheduledAtMs - this.now();
    this.timer = setTimeout(this.onTimer, delay > 0 ? delay : 0);
    // The clock alone must not keep the process alive: live calls hold their sockets open.
    this.timer.unref();
  }

  /**
   * How long the event loop may have kept audio that is read from a socket now (0 when the clock has no step overdue,
   * or while it runs): the loop has kept the clock from its due step that long, and may have been held up since the
   * step before that one, a step earlier; audio that came in meanwhile waited in this process, whatever time its
   * sender kept.
   */
  get behindMs(): number {
    if (this.timer === null && this.immediate === null) return 0;
    const late = this.now() - this.scheduledAtMs;
    return late > 0 ? late + this.stepMs : 0;
  }

  /**
   * Runs the step that is due, if one is and it is at most DEFER_AFTER_MS late: the media path calls this as each
   * packet arrives. libuv runs timers only between batches of I/O, and under load a batch (every socket that became
   * readable while the last one was served) takes milliseconds; a step due in the middle of one waited for its end.
   * Checked from inside the batch, it goes within one packet's work of its time: at 400 calls, 1.3-1.8 % of frames
   * more than 2 ms late instead of 3.9-5.4 % (docs/benchmarks/clock-under-load.md). A step later than that comes from
   * a stall (a GC pause, a long callback) and is left to the timer, which lets the I/O that waited in first.
   * A comparison per packet when nothing is due.
   */
  poll(): void {
    if (this.timer === null || this.ticking) return;
    const lateMs = this.now() - this.scheduledAtMs;
    if (lateMs < 0 || lateMs > this.deferAfterMs) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.tick();
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    if (this.now() - this.scheduledAtMs > this.deferAfterMs) {
      this.immediate = setImmediate(this.onImmediate);
      return;
    }
    this.tick();
  };

  private readonly onImmediate = (): void => {
    this.immediate = null;
    this.tick();
  };

  private tick(): void {
    this.ticking = true;
    try {
      this.runDueSteps();
    } finally {
      this.ticking = false;
    }
    if (this.sinkCount > 0 && this.timer === null) this.schedule();
  }

  private runDueSteps(): void {
    const now = this.now();
    const lastDue = Math.floor((now - this.t0 + EARLY_TOLERANCE_MS) / this.stepMs);
    let k = this.nextStep;
    if (lastDue < k) return;

    const maxSteps = MAX_CATCH_UP_FRAMES * this.slotCount;
    if (lastDue - k + 1 > maxSteps) {
      const resumeAt = lastDue - maxSteps + 1;
      const skipped = this.framesBetween(k, resumeAt);
      this.resyncs++;
      this.skippedFrames += skipped;
      this.warn({ behindMs: Math.round(now - (this.t0 + k * this.stepMs)), skippedFrames: skipped }, 'media clock fell behind; skipped frames');
      k = resumeAt;
    }

    for (; k <= lastDue && this.sinkCount > 0; k++) {
      // Advanced before the sinks run, so an add() from inside onFrame computes its first step from here.
      this.nextStep = k + 1;
      const entries = this.slots[k % this.slotCount]!;
      if (entries.length === 0) continue;
      const lateMs = this.now() - (this.t0 + k * this.stepMs);
      let delivered = 0;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (!e.active || k < e.firstStep) continue;
        e.lastStep = k;
        delivered++;
        try {
          e.sink.onFrame();
        } catch (err) {
          this.sinkErrors++;
          this.warn({ err }, 'media clock sink threw');
        }
      }
      this.frames += delivered;
      this.lateness.record(lateMs, delivered);
    }
    if (this.nextStep <= lastDue) this.nextStep = lastDue + 1;
  }

  /** Deliveries that steps [from, to) would have made; ignores sinks not yet started, so it may overcount by those. */
  private framesBetween(from: number, to: number): number {
    const steps = to - from;
    const fullFrames = Math.floor(steps / this.slotCount);
    let n = fullFrames * this.sinkCount;
    for (let k = from + fullFrames * this.slotCount; k < to; k++) n += this.slots[k % this.slotCount]!.length;
    return n;
  }

  private warn(fields: object, msg: string): void {
    if (this.log === undefined) return;
    const suppressed = this.logLimit.take();
    if (suppressed >= 0) this.log.warn({ ...fields, suppressed }, msg);
  }
}
