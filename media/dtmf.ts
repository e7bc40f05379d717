import { parseDtmf } from 'rtp-packet';

/** telephone-event/8000: the only rate offered (sdp.ts) and accepted. */
const TICKS_PER_MS = 8;

/**
 * RFC 4733 receiver. An event keeps one RTP timestamp for its whole life (§2.5.1.2) and ends with three identical
 * E=1 packets, so the digit is reported once, on the first end packet, and anything else with that timestamp is a
 * duplicate.
 *
 * If all three end packets are lost, the digit is reported when the next event starts (different timestamp): late
 * but not lost. A digit whose end is lost and is never followed by another is not reported. Events longer than
 * 8.19 s are split into segments with new timestamps (§2.5.1.3) and would be reported once per segment; bots
 * do not press keys that long.
 */
export class DtmfReceiver {
  private lastReportedTs = -1;
  /** The event in progress (seen, not ended): its timestamp, tone and longest duration so far, in ticks. */
  private openTs = -1;
  private openTone = '';
  private openTicks = 0;

  constructor(private readonly onDigit: (digit: string, durationMs: number) => void) {}

  /** Takes one telephone-event payload; false when it is not a DTMF tone event (short, or event > 15). */
  receive(rtpTimestamp: number, payload: Uint8Array): boolean {
    const ev = parseDtmf(
      Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
    );
    if (ev === null) return false;
    const ts = rtpTimestamp >>> 0;
    if (ts === this.lastReportedTs) return true;
    if (this.openTs !== -1 && ts !== this.openTs) this.report(this.openTs, this.openTone, this.openTicks);
    if (ev.end) {
      this.report(ts, ev.tone, ev.duration);
    } else if (ts === this.openTs) {
      if (ev.duration > this.openTicks) this.openTicks = ev.duration;
    } else {
      this.openTs = ts;
      this.openTone = ev.tone;
      this.openTicks = ev.duration;
    }
    return true;
  }

  private report(ts: number, tone: string, ticks: number): void {
    this.lastReportedTs = ts;
    this.openTs = -1;
    this.onDigit(tone, ticks / TICKS_PER_MS);
  }
}
