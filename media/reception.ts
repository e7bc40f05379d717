/**
 * What arrived from one RTP sender, as RFC 3550 Appendix A reckons it: packets lost (A.3: expected from the extended
 * highest sequence number, minus received), packets late (behind the highest sequence number already seen:
 * reordered or duplicated) and the interarrival jitter estimate (A.8). Pure and allocation-free: a few integer and
 * float operations per packet.
 *
 * A new sender (SSRC change) or a sequence jump of more than MAX_DROPOUT restarts the count (A.1: sipp replays each
 * pcap with its own recorded SSRC and sequence numbers); what the previous run lost is kept.
 */
export interface ReceptionStats {
  /** RFC 3550 A.3 cumulative loss from the bot, over every sender run; never negative */
  packetsLost: number;
  /** arrived behind a packet with a higher sequence number (reordered or duplicated): too late to play in order */
  packetsLate: number;
  /** RFC 3550 A.8 interarrival jitter of the bot's audio, ms; its last estimate */
  jitterMs: number;
  /** the largest jitter estimate the call saw, ms */
  maxJitterMs: number;
}

/** RFC 3550 A.1: a jump of more than this many packets ahead is a new sequence run, not loss. */
const MAX_DROPOUT = 3000;
/** RFC 3550 A.1: up to this many behind is a late packet; further behind is also a new run. */
const MAX_MISORDER = 100;
const SEQ_MOD = 0x10000;

export class Reception {
  private started = false;
  private baseSeq = 0;
  /** extended highest sequence number: cycles × 65536 + max_seq */
  private maxExtended = 0;
  private received = 0;
  private lostBefore = 0;
  private late = 0;
  private lastTransit = Number.NaN;
  private jitter = 0;
  private maxJitter = 0;

  /** Samples per ms of the payload's RTP clock: 8 for PCMU. */
  constructor(private readonly samplesPerMs = 8) {}

  /** A new sender (SSRC change): what the previous one lost stays counted. */
  restart(): void {
    if (!this.started) return;
    this.lostBefore += this.currentLost();
    this.started = false;
    this.lastTransit = Number.NaN;
  }

  /**
   * One packet of the current sender. `rtpTimestamp` only for audio: RFC 4733 packets repeat their event's timestamp
   * and would read as jitter.
   */
  receive(seq: number, arrivalMs: number, rtpTimestamp?: number): void {
    if (!this.started) {
      this.started = true;
      this.baseSeq = seq;
      this.maxExtended = seq;
      this.received = 0;
    }
    const maxSeq = this.maxExtended % SEQ_MOD;
    const ahead = (seq - maxSeq + SEQ_MOD) % SEQ_MOD;
    if (ahead === 0 && this.received > 0) {
      // a duplicate of the highest: counted as received, as A.3 does (loss is clamped at 0 below)
      this.late++;
      this.received++;
      return;
    }
    if (ahead < MAX_DROPOUT) {
      this.maxExtended += ahead;
    } else if (ahead <= SEQ_MOD - MAX_MISORDER) {
      this.restart();
      this.receive(seq, arrivalMs, rtpTimestamp);
      return;
    } else {
      // behind the highest: a reordered packet fills the gap it left, so it counts as received
      this.late++;
      this.received++;
      return;
    }
    this.received++;
    if (rtpTimestamp === undefined) return;
    // A.8, in RTP clock units; transit differences wrap with the 32-bit timestamp, hence the modular fold.
    const transit = arrivalMs * this.samplesPerMs - rtpTimestamp;
    if (!Number.isNaN(this.lastTransit)) {
      let d = Math.abs(transit - this.lastTransit) % 2 ** 32;
      if (d > 2 ** 31) d = 2 ** 32 - d;
      this.jitter += (d - this.jitter) / 16;
      if (this.jitter > this.maxJitter) this.maxJitter = this.jitter;
    }
    this.lastTransit = transit;
  }

  get stats(): ReceptionStats {
    return {
      packetsLost: this.lostBefore + this.currentLost(),
      packetsLate: this.late,
      jitterMs: round2(this.jitter / this.samplesPerMs),
      maxJitterMs: round2(this.maxJitter / this.samplesPerMs),
    };
  }

  /** The current run, as an RTCP report block gives it (RFC 3550 §6.4.1, A.3), or undefined before a packet came. */
  get run(): { extendedHighestSeq: number; expected: number; received: number; cumulativeLost: number; jitter: number } | undefined {
    if (!this.started) return undefined;
    return {
      extendedHighestSeq: this.maxExtended >>> 0,
      expected: this.maxExtended - this.baseSeq + 1,
      received: this.received,
      cumulativeLost: this.currentLost(),
      jitter: Math.floor(this.jitter),
    };
  }

  private currentLost(): number {
    if (!this.started) return 0;
    const expected = this.maxExtended - this.baseSeq + 1;
    return Math.max(0, expected - this.received);
  }
}

/** ms to the hundredth, as the summaries and the RTCP figures show them */
export function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}
