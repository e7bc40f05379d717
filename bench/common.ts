/**
 * What the bench's processes share: the audio marker that makes every 20 ms of audio findable on the other side, the
 * IPC messages between the orchestrator (run.ts) and the load generator (loadgen.ts), and percentile helpers.
 */

import type { LatencyHistogram } from '../media/stats.js';
import { toneUlaw } from '../test/support/audio.js';
import type { SenderProfile } from '../test/support/sender-profiles.js';

/** μ-law bytes 0xA5 0x5A never come out of the plugin's silence (0xFF) or the speech filler below. */
export const MARK0 = 0xa5;
export const MARK1 = 0x5a;
export const FRAME_BYTES = 160;
/** μ-law silence: what the caller's pauses are made of, with no marker (the plugin may shorten them). */
export const SILENCE = 0xff;
/**
 * The rest of a marked frame: a 1 kHz tone at half scale, loud enough that the plugin's playout buffer treats the
 * frame as speech (media/silence.ts), which it must deliver, never drop. loadgen.ts checks both kinds at start.
 */
const SPEECH_FILLER = toneUlaw(1000, 20);
if (SPEECH_FILLER.some((b, i) => b === MARK0 && SPEECH_FILLER[i + 1] === MARK1)) throw new Error('speech filler holds a marker');
/** Ring of per-frame send times: 4096 frames of 20 ms = 82 s, longer than any measurement window. */
export const RING = 4096;
/**
 * Drift seen at the bots that is still "zero": they time our packets on the load generator's event loop, whose own
 * delay shifts by a millisecond or two as the plugin moves calls' frames (playout phase adaptation) and so changes
 * when the load generator is busy. A real drift grows with the window and shows in the packet count too.
 */
export const DRIFT_NOISE_MS = 3;
/**
 * Packets received vs owed per call that is still "zero": the count's edges are medians of the packets' own timing
 * (loadgen.ts), each good to a fraction of a frame; a move of the plugin's within STEP_K packets of an edge is not
 * seen as one. Three 200-call windows read 0.05-0.22 (clock-under-load.md §16).
 */
export const PACKET_COUNT_SLACK = 1;

/** The window's send times drifted from the grid, or a call's packet count is off: beyond the noise of both. */
export function drifted(w: Pick<WindowReport, 'driftMaxMs' | 'packetCountErrorMax'>): boolean {
  return w.driftMaxMs > DRIFT_NOISE_MS || w.packetCountErrorMax > PACKET_COUNT_SLACK;
}

export function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

/**
 * One call's packets received in a window against those the plugin's clock owed between the first and the last of
 * them, positive when more came. `offsets`: each packet's arrival less its RTP timestamp's time from the first, ms;
 * `lastFrame`: the latest packet's 20 ms frame from the first; `netShiftMs`: the moves the plugin made (each later
 * one owes a packet fewer per 20 ms). The time the packets took beyond their timestamps' span is the offsets' change
 * between the medians of the first and the last `k`: the edges are the packets' own, so a stall of the load
 * generator's as it opened or closed the window does not move them (clock-under-load.md §16).
 */
export function packetCountError(offsets: readonly number[], lastFrame: number, netShiftMs: number, k: number): number {
  if (offsets.length === 0) return 0;
  const n = Math.min(k, offsets.length);
  const offsetChangeMs = median(offsets.slice(-n)) - median(offsets.slice(0, n));
  return offsets.length - (lastFrame + 1 + (offsetChangeMs - netShiftMs) / 20);
}

/** Writes the marker of 20 ms frame `idx` at `offset`: magic, then the index (u32 BE). */
function writeMarker(buf: Buffer, offset: number, idx: number): void {
  buf[offset] = MARK0;
  buf[offset + 1] = MARK1;
  buf.writeUInt32BE(idx >>> 0, offset + 2);
}

/** Writes speech frame `idx` at `offset`: the marker, then the speech filler. */
export function writeSpeechFrame(buf: Buffer, offset: number, idx: number): void {
  SPEECH_FILLER.copy(buf, offset + 6, 6);
  writeMarker(buf, offset, idx);
}

/** The frame index marked at `offset`, or -1 (silence: the caller's pauses, or what the plugin sent in their place). */
export function readMarker(buf: Buffer, offset: number): number {
  if (buf.length < offset + 6 || buf[offset] !== MARK0 || buf[offset + 1] !== MARK1) return -1;
  return buf.readUInt32BE(offset + 2);
}

/** 160 bytes of one speech frame as base64: the 6 marker bytes are the first 8 characters, the rest never changes. */
const TAIL_B64 = SPEECH_FILLER.toString('base64', 6);
export function speechFrameBase64(idx: number): string {
  const head = Buffer.allocUnsafe(6);
  writeMarker(head, 0, idx);
  return head.toString('base64') + TAIL_B64;
}

/** 160 bytes of μ-law silence as base64. */
export const SILENT_FRAME_BASE64 = Buffer.alloc(FRAME_BYTES, SILENCE).toString('base64');

export interface Percentiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Sorts `values` in place. */
export function percentiles(values: number[] | Float64Array): Percentiles {
  const v = values instanceof Float64Array ? values : Float64Array.from(values);
  v.sort();
  const at = (p: number): number => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)]!);
  return { n: v.length, p50: round(at(50)), p95: round(at(95)), p99: round(at(99)), max: round(v.length ? v[v.length - 1]! : NaN) };
}

/** The same from a histogram (0.1 ms buckets: each percentile is its bucket's upper edge), with no sort. */
export function histogramPercentiles(h: LatencyHistogram): Percentiles {
  const at = (p: number): number => (h.count === 0 ? NaN : round(h.percentile(p)));
  return { n: h.count, p50: at(50), p95: at(95), p99: at(99), max: round(h.count ? h.maxValueMs : NaN) };
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---- IPC: orchestrator → load generator, each answered by one reply with the same id ----

export type Target = { kind: 'plugin'; wsPort: number } | { kind: 'floor'; wsPort: number };

export interface StartCalls {
  op: 'start-calls';
  n: number;
  target: Target;
  /** calls started per second */
  rate: number;
  /** how each call's Talkdesk side sends from each measurement window's start (steady before it) */
  sender: SenderProfile;
}

export interface EndCalls {
  op: 'end-calls';
  /** every other call is ended by the bot (BYE), the others by Talkdesk (stop) */
  botEnds: 'half' | 'all' | 'none';
}

export interface Churn {
  op: 'churn';
  count: number;
  rate: number;
  holdMs: number;
  wsPort: number;
  /** send a ChurnProgress every this many answered calls */
  progressEvery: number;
}

/** Sent by the load generator while a churn runs (not a reply): the orchestrator samples the plugin's RSS. */
export interface ChurnProgress {
  churnProgress: { answered: number };
}

/**
 * A window: window-start, then window-end when its time is up (what was sent by then is what it counts; run.ts reads
 * the plugin's CPU here), then window-report, which waits for the window's frames still on their way.
 */
export type Request = StartCalls | EndCalls | Churn | { op: 'window-start' } | { op: 'window-end' } | { op: 'window-report' } | { op: 'exit' };
export type Command = Request & { id: number };

/** One direction of the window: marked (speech) frames that entered one side and what left the other. */
export interface DirectionReport {
  /** speech frames sent between window-start and window-end */
  sent: number;
  /** of those, found at the other side (window-report waits up to DRAIN_MAX_MS for the last of them) */
  received: number;
  /** sent and never received: toward the bot, caller speech the bot never heard, whatever the plugin's reason */
  lost: number;
  /**
   * ms from each frame's nominal time (bot → Talkdesk: its send time; Talkdesk → bot: the sender profile's
   * nominalMs, see test/support/sender-profiles.ts) to its arrival at the other side
   */
  latency: Percentiles;
}

export interface WindowReport {
  seconds: number;
  calls: number;
  /** Talkdesk → plugin → bot */
  toBot: DirectionReport;
  /** bot → plugin → Talkdesk */
  toTalkdesk: DirectionReport;
  /** RTP packets the bot legs received (ours) and sent in the window */
  rtpIn: number;
  rtpOut: number;
  /** both ways, by the calls' target: the window with the plugin and the floor side by side splits its CPU by these */
  rtpByTarget: Record<Target['kind'], number>;
  /** RTP packets that carried no marker: the caller's pauses, and silence the plugin sent when audio was late */
  silencePackets: number;
  /**
   * our RTP's arrival at the bot against each call's ideal 20 ms grid (its earliest packet in the window, or since the
   * plugin last moved that call's frames), ms
   */
  lateness: Percentiles;
  /** largest |arrival-grid offset of the last second − that of the first second| over the calls, phase shifts aside, ms */
  driftMaxMs: number;
  /** times the plugin moved a call's frames to follow the caller's (playout phase adaptation), as seen at the bots */
  phaseShifts: number;
  /** largest |packets received − packets the plugin's clock owed between the first and the last| over the calls */
  packetCountErrorMax: number;
  /** the load generator's own state: if it is saturated, the numbers above are its, not the plugin's */
  loadgen: {
    cpuPercent: number;
    loopDelayP99Ms: number;
    loopDelayMaxMs: number;
    /** how late the callers' chunks left the load generator against their schedule (part of the caller delay) */
    callerSendLateness: Percentiles;
    /** its GC pauses in the window, and the longest */
    gcs: number;
    gcMaxMs: number;
  };
}

export interface EndReport {
  calls: number;
  botEnded: number;
  talkdeskEnded: number;
  /** bot BYE → Talkdesk got stop, ms */
  byeToStop: Percentiles;
  /** bot BYE → Talkdesk socket closed */
  byeToClose: Percentiles;
  /** Talkdesk stop → bot got BYE */
  stopToBye: Percentiles;
  /** bot stopped its audio and sent BYE → the last bot audio reaching Talkdesk after that, ms (0: none) */
  staleAfterByeMs: Percentiles;
  /** frames of bot audio that reached Talkdesk after the BYE, worst call */
  staleFramesMax: number;
  /** calls where a leg did not end within 1 s of the other (or never) */
  slowEnds: number;
  neverEnded: number;
}

export interface ChurnReport {
  requested: number;
  started: number;
  answered: number;
  failed: number;
  failures: Record<string, number>;
  ends: EndReport;
  seconds: number;
}

export interface StartReport {
  requested: number;
  up: number;
  failed: number;
  failures: Record<string, number>;
  seconds: number;
}
