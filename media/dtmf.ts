import { DtmfPacketizer, parseDtmf } from 'rtp-packet';
import type { RtpSequencer } from './rtp-sequencer.js';

/** RFC 4733 both ways: digits from the bot (DtmfReceiver), and the caller's to it (DtmfSender). */

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

/** RFC 4733 events 0-15: the DTMF keys. */
const DTMF_DIGIT = /^[0-9*#A-D]$/;
/** Digits waiting their turn; a caller typing faster than 160 ms a digit for this long is not a caller. */
const MAX_QUEUED_DIGITS = 32;
/**
 * One digit sent: an update every frame for DTMF_TONE_FRAMES frames (100 ms, the tone), then the end packet three
 * times at that same interval (§2.5.1.4). The tone's length is ours to choose: Talkdesk's `dtmf` frame says which
 * key, not for how long; 100 ms is well above the 40 ms a DTMF receiver must accept.
 */
const DTMF_TONE_FRAMES = 5;

/**
 * RFC 4733 sender: digits as telephone-events in the audio's own stream, one packet a frame in place of the
 * caller's audio. A digit's packets are built when it starts: its RTP timestamp is the audio timestamp of that frame
 * (§2.5.1.2: fixed for the whole event, the duration field grows instead), marker on the first packet only, sequence
 * numbers from the stream's (RtpSequencer), since the events share the audio's SSRC.
 */
export class DtmfSender {
  private readonly queue: string[] = [];
  private packets: Buffer[] = [];

  constructor(
    private readonly sequencer: RtpSequencer,
    private readonly frameMs: number,
  ) {}

  /** False when it is no DTMF key, or MAX_QUEUED_DIGITS already wait. */
  enqueue(digit: string): boolean {
    if (!DTMF_DIGIT.test(digit) || this.queue.length >= MAX_QUEUED_DIGITS) return false;
    this.queue.push(digit);
    return true;
  }

  /** A digit is being sent or waits: this frame's packet is one of its. */
  get busy(): boolean {
    return this.packets.length > 0 || this.queue.length > 0;
  }

  /** This frame's packet (only while busy), beginning the next digit if none is under way. */
  nextPacket(payloadType: number): Buffer {
    if (this.packets.length === 0) {
      const packetizer = new DtmfPacketizer({
        ssrc: this.sequencer.ssrc,
        payloadType,
        // rtp-packet defaults to 48000 (sip-notes §3): telephone-event/8000 is the only rate we offer
        clockRate: 8000,
        nextSequenceNumber: this.sequencer.nextSequenceNumber,
      });
      packetizer.startEvent(this.queue.shift()!, this.sequencer.timestamp);
      for (let i = 0; i < DTMF_TONE_FRAMES; i++) this.packets.push(packetizer.update(this.frameMs));
      // endEvent() builds the three E=1 packets at once; they go out one a frame, as §2.5.1.4 asks
      this.packets.push(...packetizer.endEvent(0));
    }
    return this.packets.shift()!;
  }

  /** Nothing more to send: the session closed. */
  clear(): void {
    this.queue.length = 0;
    this.packets = [];
  }
}
