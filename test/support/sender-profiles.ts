/**
 * How a Talkdesk-like sender delivers the caller's μ-law over time: the schedule of its `media` frames, one chunk per
 * frame, for the fake Talkdesk client of the tests (fake-talkdesk.ts) and the benchmark's load generator
 * (bench/loadgen.ts). Pure and deterministic: the randomness comes from a seeded generator, and nothing here reads a
 * clock or does I/O; the callers send each chunk at t0 + atMs of their own clock.
 *
 * Why these shapes: ../shared/talkdesk-protocol.md §2.9. Nothing documents Talkdesk's pacing, and a stream over TCP
 * drifts, bursts and jitters, but never loses or reorders a byte; so every schedule here sends every byte exactly
 * once, in order, and its send times never decrease.
 */

/** The profiles, by name (the bench's `--sender`). */
export const SENDER_PROFILES = [
  'steady',
  'slow-40ms',
  'jitter-40',
  'burst-100',
  'burst-200',
  'burst-500',
  'fast-2pct',
  'pause-1s',
] as const;
export type SenderProfile = (typeof SENDER_PROFILES)[number];

/** How a sender paces its frames; a profile is one of these (PROFILES), and tests may build their own. */
export interface Pacing {
  /** Bytes of μ-law per `media` frame: 160 (20 ms) or 320 (40 ms). */
  frameBytes: number;
  /** Audio ms sent per ms of time: 1 is real time, 0.94 a sender 6 % slow; Infinity sends everything at once. */
  speed: number;
  /** Each frame leaves up to this many ms before or after its time (uniform), never before the frame ahead of it. */
  jitterMs?: number;
  /**
   * The sender stops sending for `lengthMs`, first at `firstAtMs`, then every `everyMs` (omitted: only once); times
   * on the audio's own pace, before any earlier stall moved it.
   */
  stall?: {
    firstAtMs: number;
    everyMs?: number;
    lengthMs: number;
    /**
     * true: what was held back then goes at once and the stream is back on its times (TCP head-of-line blocking
     * behind a retransmitted segment). false: it resumes where it was, at its pace, so everything after comes
     * `lengthMs` later (the sender itself paused).
     */
    catchUp: boolean;
  };
}

/** Silence held back by TCP stalls: the first after 2 s, then every 4 s, so a 10 s window sees two. */
const BURST_FIRST_MS = 2_000;
const BURST_EVERY_MS = 4_000;

export const PROFILES: Readonly<Record<SenderProfile, Pacing>> = {
  /** A perfectly paced client: 20 ms frames on absolute time (Twilio-style media streams, the old bench sender). */
  steady: { frameBytes: 160, speed: 1 },
  /**
   * The public Talkdesk client simulator (§2.8): 320-byte (40 ms) frames, each sent after two 20 ms timers, which
   * fire late, so it runs at 0.83–0.94× real time; 0.94 is its best case, and any slower only inserts more silence.
   */
  'slow-40ms': { frameBytes: 320, speed: 0.94 },
  /** A sender across the internet: each 20 ms frame ±40 ms around its time (§2.9 "Jitter"). */
  'jitter-40': { frameBytes: 160, speed: 1, jitterMs: 40 },
  /** TCP retransmission stalls (§2.9 "Bursts"): 100, 200 or 500 ms of audio held back, then delivered at once. */
  'burst-100': { frameBytes: 160, speed: 1, stall: { firstAtMs: BURST_FIRST_MS, everyMs: BURST_EVERY_MS, lengthMs: 100, catchUp: true } },
  'burst-200': { frameBytes: 160, speed: 1, stall: { firstAtMs: BURST_FIRST_MS, everyMs: BURST_EVERY_MS, lengthMs: 200, catchUp: true } },
  'burst-500': { frameBytes: 160, speed: 1, stall: { firstAtMs: BURST_FIRST_MS, everyMs: BURST_EVERY_MS, lengthMs: 500, catchUp: true } },
  /**
   * A sender whose clock runs 2 % fast against ours (a cheap oscillator, or one catching up after a stall of its
   * own): the plugin must shorten the caller's pauses to keep up. The bench runs it for 60 s and more.
   */
  'fast-2pct': { frameBytes: 160, speed: 1.02 },
  /** A sender that stops for 1 s once (its own audio source stalled) and then goes on at real time, no catch-up. */
  'pause-1s': { frameBytes: 160, speed: 1, stall: { firstAtMs: BURST_FIRST_MS, lengthMs: 1_000, catchUp: false } },
};

export type ParsedProfile = { ok: true; profile: SenderProfile } | { ok: false; error: string };

/** A profile name from a command line: a result, not an exception, so the caller says how it wants to fail. */
export function parseSenderProfile(name: string): ParsedProfile {
  return (SENDER_PROFILES as readonly string[]).includes(name)
    ? { ok: true, profile: name as SenderProfile }
    : { ok: false, error: `unknown sender profile "${name}" (one of: ${SENDER_PROFILES.join(', ')})` };
}

/** One `media` frame of the schedule. */
export interface Chunk {
  /** When it is sent, ms after the stream's start. Never less than the chunk's before. */
  atMs: number;
  /**
   * When this sender's own clock meant it to go, ms after the start: its pace and its own pauses, without jitter or
   * TCP stalls. A frame's delay at the bot is measured from here, so that the sender's rate is not counted as
   * the plugin's delay. For steady, jitter and burst senders it is k · frame length.
   */
  nominalMs: number;
  /** Which bytes of the audio: [offset, offset + bytes). */
  offset: number;
  bytes: number;
}

export interface ScheduleOptions {
  /** Length of the audio; omitted, the schedule never ends (the bench's calls stream until they are ended). */
  totalBytes?: number;
  /** Seeds the jitter; the same seed gives the same schedule. Default 1. */
  seed?: number;
}

/** The chunks of a stream, in sending order. */
export function* senderSchedule(pacing: SenderProfile | Pacing, opts: ScheduleOptions = {}): Generator<Chunk, void, void> {
  const p = typeof pacing === 'string' ? PROFILES[pacing] : pacing;
  const total = opts.totalBytes ?? Infinity;
  const random = mulberry32(opts.seed ?? 1);
  const frameMs = p.frameBytes / 8;
  const jitter = p.jitterMs ?? 0;
  let lastAt = 0;
  for (let k = 0, offset = 0; offset < total; k++, offset += p.frameBytes) {
    const paced = p.speed === Infinity ? 0 : (k * frameMs) / p.speed;
    let nominalMs = paced;
    let atMs = paced;
    const s = p.stall;
    if (s !== undefined && paced >= s.firstAtMs) {
      // stalls begun by the frame's time, the last of which it may be inside
      const begun = s.everyMs === undefined ? 1 : Math.floor((paced - s.firstAtMs) / s.everyMs) + 1;
      const lastStart = s.firstAtMs + (begun - 1) * (s.everyMs ?? 0);
      if (s.catchUp) {
        if (paced < lastStart + s.lengthMs) atMs = lastStart + s.lengthMs;
      } else {
        nominalMs = paced + begun * s.lengthMs;
        atMs = nominalMs;
      }
    }
    if (jitter > 0) atMs += (random() * 2 - 1) * jitter;
    atMs = Math.max(atMs, lastAt, 0);
    lastAt = atMs;
    yield { atMs, nominalMs, offset, bytes: Math.min(p.frameBytes, total - offset) };
  }
}

/** The whole schedule of `totalBytes` of audio. */
export function senderChunks(pacing: SenderProfile | Pacing, totalBytes: number, seed?: number): Chunk[] {
  return [...senderSchedule(pacing, { totalBytes, seed })];
}

/** mulberry32: a small, fast 32-bit generator, good enough for jitter and reproducible from its seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
