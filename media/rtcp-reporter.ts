import { randomBytes } from 'node:crypto';
import { buildSDES } from 'rtp-packet';
import { buildCompound, ntpMiddle, ntpNow, readCompound, type ReportBlock, type RtcpResult } from './rtcp.js';
import { rtcpIntervalMs } from './rtcp-interval.js';
import { round2 } from './reception.js';

/** What the RTP session tells the reporter when a report is due: read then, never per packet. */
export interface RtcpSource {
  /** our stream: packets and payload octets sent, and the RTP timestamp of this instant */
  sent(): { packetCount: number; octetCount: number; rtpTimestamp: number };
  /** the bot's stream in its current run (RFC 3550 A.1), or undefined before its first packet */
  received(): ReceivedStream | undefined;
}

export interface ReceivedStream {
  ssrc: number;
  extendedHighestSeq: number;
  expected: number;
  received: number;
  cumulativeLost: number;
  /** interarrival jitter, RTP timestamp units */
  jitter: number;
}

/** What the bot's last report said of our stream to it. */
export interface BotReport {
  /** lost between its last two reports, 0-1 */
  fractionLost: number;
  /** lost since the call began, as it counts */
  cumulativeLost: number;
  jitterMs: number;
  /** RFC 3550 §6.4.1 round trip from its LSR and DLSR; absent until it echoed one of our SRs */
  rttMs?: number;
  maxRttMs?: number;
}

export interface RtcpStats {
  /** compound packets we sent, the BYE at the end included */
  sent: number;
  /** the bot's compound packets taken */
  received: number;
  /** not from the answer's address, failing SRTCP, or not valid RTCP */
  dropped: number;
  /** absent until the bot has reported on our stream */
  bot?: BotReport;
}

/** PCMU at 20 ms: 64 kb/s of payload and 40 bytes of IP, UDP and RTP headers 50 times a second (RFC 3550 §6.2) */
const SESSION_BANDWIDTH_BYTES = (64_000 + 40 * 8 * 50) / 8;
const RTCP_BANDWIDTH_BYTES = 0.05 * SESSION_BANDWIDTH_BYTES;
const UDP_IP_BYTES = 28;
const FRAME_MS = 20;
const SAMPLES_PER_MS = 8;

/**
 * One RTP session's RTCP (RFC 3550 §6): a compound report at the §6.3 interval, counted in frames of the one media
 * clock (no timer of its own), an SR while we send with a block on the bot's stream while it sends, and a last one
 * with BYE; and the bot's reports, read for what they say of our stream (loss, jitter, round trip). Where the packets
 * go, and SRTCP, is the session's business (`send`).
 */
export class RtcpReporter {
  private readonly sdes: Buffer;
  private framesLeft: number;
  private avgRtcpSize: number;
  /** our packet count when each of the last two reports went: §6.3.8's we_sent looks back two intervals */
  private sentAtReports: [number, number] = [0, 0];
  /** the bot's counts at our last report, for the fraction lost since (A.3) */
  private prior: { ssrc: number; expected: number; received: number } | undefined;
  /** the bot's last SR: its NTP middle bits and when it came, for LSR and DLSR */
  private lastSr: { middle: number; at: number } | undefined;
  private botSentSinceReport = false;
  private reportsSent = 0;
  private readonly counters = { sent: 0, received: 0, dropped: 0 };
  private bot: BotReport | undefined;

  constructor(
    private readonly ssrc: number,
    private readonly source: RtcpSource,
    /** false when nothing could be sent (no destination: the bot on hold) */
    private readonly send: (compound: Buffer) => boolean,
    private readonly random: () => number = Math.random,
  ) {
    // RFC 7022: a random CNAME per session, so that nothing about the host or the caller leaks through it
    this.sdes = buildSDES(ssrc, randomBytes(12).toString('base64'));
    // §6.3.2: the initial average is the size of the packet we will send first
    this.avgRtcpSize = 8 + 20 + 24 + this.sdes.length + UDP_IP_BYTES;
    this.framesLeft = this.nextInFrames();
  }

  /** One frame of the media clock: a report when one is due. */
  onFrame(): void {
    if (--this.framesLeft > 0) return;
    this.report(false);
    this.framesLeft = this.nextInFrames();
  }

  /** The last report, ending in BYE (§6.6): the session is over. */
  bye(): void {
    this.report(true);
  }

  /** One of the bot's datagrams, from the answer's address, SRTCP removed: what it said, or why it was not taken. */
  take(pkt: Buffer): RtcpResult {
    const result = readCompound(pkt, this.ssrc);
    if (!result.ok) {
      this.counters.dropped++;
      return result;
    }
    this.counters.received++;
    this.avgRtcpSize = (pkt.length + UDP_IP_BYTES) / 16 + (this.avgRtcpSize * 15) / 16;
    const { srNtpMiddle, block } = result.value;
    if (srNtpMiddle !== undefined) {
      this.lastSr = { middle: srNtpMiddle, at: performance.now() };
      this.botSentSinceReport = true;
    }
    if (block !== undefined) this.bot = this.botReport(block);
    return result;
  }

  /** A datagram refused before it could be read (stranger, SRTCP failure). */
  dropped(): void {
    this.counters.dropped++;
  }

  get stats(): RtcpStats {
    return this.bot === undefined ? { ...this.counters } : { ...this.counters, bot: { ...this.bot } };
  }

  private report(bye: boolean): void {
    const sent = this.source.sent();
    const weSent = sent.packetCount !== this.sentAtReports[0];
    const pkt = buildCompound({
      ssrc: this.ssrc,
      ...(weSent ? { sender: { ntp: ntpNow(), ...sent } } : {}),
      ...this.blockOption(),
      sdes: this.sdes,
      bye,
    });
    this.sentAtReports = [this.sentAtReports[1], sent.packetCount];
    this.avgRtcpSize = (pkt.length + UDP_IP_BYTES) / 16 + (this.avgRtcpSize * 15) / 16;
    this.reportsSent++;
    if (this.send(pkt)) this.counters.sent++;
  }

  /** A block on the bot's stream when it sent since our last report (§6.4: only sources heard from). */
  private blockOption(): { block?: ReportBlock } {
    const r = this.source.received();
    if (r === undefined) return {};
    let prior = this.prior;
    // a new sender, or a new run of the same one (A.1): its counts start again
    if (prior === undefined || prior.ssrc !== r.ssrc || r.expected < prior.expected) prior = { ssrc: r.ssrc, expected: 0, received: 0 };
    this.prior = { ssrc: r.ssrc, expected: r.expected, received: r.received };
    const receivedInterval = r.received - prior.received;
    this.botSentSinceReport ||= receivedInterval > 0;
    if (receivedInterval <= 0) return {};
    const expectedInterval = r.expected - prior.expected;
    const lostInterval = expectedInterval - receivedInterval;
    const lastSr = this.lastSr;
    return {
      block: {
        ssrc: r.ssrc,
        fractionLost: expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval * 256) / expectedInterval),
        cumulativeLost: r.cumulativeLost,
        extendedHighestSeq: r.extendedHighestSeq,
        jitter: r.jitter,
        lastSr: lastSr?.middle ?? 0,
        delaySinceLastSr: lastSr === undefined ? 0 : Math.round(((performance.now() - lastSr.at) / 1000) * 65536),
      },
    };
  }

  private botReport(block: ReportBlock): BotReport {
    const previous = this.bot;
    const report: BotReport = {
      fractionLost: Math.round((block.fractionLost / 256) * 1000) / 1000,
      cumulativeLost: block.cumulativeLost,
      jitterMs: round2(block.jitter / SAMPLES_PER_MS),
    };
    let rttMs = previous?.rttMs;
    if (block.lastSr !== 0) {
      // §6.4.1: arrival − LSR − DLSR, all in 1/65536 s on our own NTP clock; a "negative" one is a bogus echo
      const units = (ntpMiddle(ntpNow()) - block.lastSr - block.delaySinceLastSr) >>> 0;
      if (units < 0x80000000) rttMs = round2((units * 1000) / 65536);
    }
    if (rttMs !== undefined) {
      report.rttMs = rttMs;
      report.maxRttMs = Math.max(rttMs, previous?.maxRttMs ?? 0);
    }
    return report;
  }

  /** §6.3: the next interval, in whole frames of the media clock (at least one). */
  private nextInFrames(): number {
    const weSent = this.source.sent().packetCount !== this.sentAtReports[0];
    const senders = (weSent ? 1 : 0) + (this.botSentSinceReport ? 1 : 0);
    this.botSentSinceReport = false;
    const ms = rtcpIntervalMs({
      members: 2,
      senders,
      rtcpBandwidth: RTCP_BANDWIDTH_BYTES,
      weSent,
      avgRtcpSize: this.avgRtcpSize,
      initial: this.reportsSent === 0,
      random: this.random(),
    });
    return Math.max(1, Math.round(ms / FRAME_MS));
  }
}
