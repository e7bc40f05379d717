import type { Logger } from 'pino';
import type { PluginConfig } from '../../config/schema.js';
import { CallEnds, type CallEnd } from './end.js';

/**
 * Media timeouts and the longest call, for every call of the process on one timer.
 *
 * Nothing happens per packet or per frame: each sweep (every SWEEP_MS) reads counters the media paths keep anyway
 * (frames from Talkdesk, packets accepted from the bot) and compares them with the last sweep's. A counter that
 * moved restarts that silence from this sweep; one that has not moved for its timeout ends the call. So a timeout
 * fires between N and N + SWEEP_MS after the last frame or packet, never early, and a busy call costs one timer
 * visit a second instead of a timer reset per packet.
 */
export const SWEEP_MS = 1000;

/** What one call's activity looks like at a sweep. */
export interface Activity {
  /** every frame Talkdesk sent, keep-alives included (TalkdeskStream stats.framesIn) */
  talkdeskFrames: number;
  /**
   * one entry per bot leg, in a stable order: packets accepted from it (RtpSession.packetsAccepted), or undefined
   * while no RTP is due from it (not answered yet, on hold, or an answer that says the bot does not send)
   */
  botPackets: ReadonlyArray<number | undefined>;
}

type Limits = Pick<PluginConfig['limits'], 'rtpTimeoutMs' | 'talkdeskTimeoutMs' | 'maxCallMs'>;

interface Silence {
  count: number;
  /** the sweep that first saw `count` */
  since: number;
}

/** Pure: one call's counters over the sweeps, and the end they call for. */
export class Liveness {
  private talkdesk: Silence;
  private readonly bot: Array<Silence | undefined> = [];

  constructor(
    private readonly limits: Limits,
    private readonly startedAt: number,
  ) {
    this.talkdesk = { count: 0, since: startedAt };
  }

  /** The end this sweep calls for, if any. Max duration first: a call that ran too long says so even if it is quiet. */
  check(now: number, activity: Activity): CallEnd | undefined {
    const { rtpTimeoutMs, talkdeskTimeoutMs, maxCallMs } = this.limits;
    if (now - this.startedAt >= maxCallMs) {
      return CallEnds.error('max-duration', `call longer than ${maxCallMs} ms`);
    }
    this.talkdesk = observe(this.talkdesk, activity.talkdeskFrames, now);
    activity.botPackets.forEach((count, leg) => {
      this.bot[leg] = count === undefined ? undefined : observe(this.bot[leg], count, now);
    });
    if (now - this.talkdesk.since >= talkdeskTimeoutMs) {
      return CallEnds.error('talkdesk-timeout', `no frame from Talkdesk for ${talkdeskTimeoutMs} ms`);
    }
    const silentLeg = this.bot.findIndex((s) => s !== undefined && now - s.since >= rtpTimeoutMs);
    if (silentLeg >= 0) {
      const which = this.bot.length > 1 ? ` on leg ${silentLeg + 1} of ${this.bot.length}` : '';
      return CallEnds.error('media-timeout', `no RTP from the bot for ${rtpTimeoutMs} ms${which}`);
    }
    return undefined;
  }
}

function observe(last: Silence | undefined, count: number, now: number): Silence {
  return last !== undefined && last.count === count ? last : { count, since: now };
}

/** The process's one sweep timer; it runs only while some call is watched, and never keeps the process alive. */
export class CallWatchdog {
  private readonly watched = new Set<(now: number) => void>();
  private timer: NodeJS.Timeout | null = null;
  private readonly periodMs: number;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private lastSweep = -Infinity;

  constructor(opts: { periodMs?: number; now?: () => number; log?: Logger } = {}) {
    this.periodMs = opts.periodMs ?? SWEEP_MS;
    this.now = opts.now ?? (() => performance.now());
    this.log = opts.log;
  }

  /** `check` runs once a sweep until the returned (idempotent) unwatch(). */
  watch(check: (now: number) => void): () => void {
    const entry = (now: number) => check(now);
    this.watched.add(entry);
    if (this.timer === null) {
      this.timer = setInterval(this.sweep, this.periodMs);
      this.timer.unref();
    }
    return () => {
      if (!this.watched.delete(entry) || this.watched.size > 0 || this.timer === null) return;
      clearInterval(this.timer);
      this.timer = null;
    };
  }

  get size(): number {
    return this.watched.size;
  }

  /** When the last sweep ran (performance.now()): what a test of a timeout that must not fire waits on. */
  get lastSweepAt(): number {
    return this.lastSweep;
  }

  /** One sweep now (also what the timer runs). A check that throws does not stop the others. */
  readonly sweep = (): void => {
    const now = this.now();
    this.lastSweep = now;
    for (const check of [...this.watched]) {
      try {
        check(now);
      } catch (err) {
        // a call's check only reads counters and asks the call to end, so this is a bug: keep sweeping the others
        this.log?.error({ err }, 'call watchdog check threw');
      }
    }
  };
}
