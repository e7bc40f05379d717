import { buildBYE, parseRTCPCompound } from 'rtp-packet';

/** RFC 3550 §6.4.1: what a sender says of its own stream in an SR. */
export interface SenderInfo {
  /** the wallclock time of the report, NTP format (§4) */
  ntp: NtpTime;
  /** the same instant on the stream's RTP clock */
  rtpTimestamp: number;
  packetCount: number;
  /** payload octets, headers and padding excluded */
  octetCount: number;
}

export interface NtpTime {
  /** seconds since 1900-01-01, mod 2^32 */
  seconds: number;
  /** 1/2^32 s */
  fraction: number;
}

/** RFC 3550 §6.4.1: one reception report block, as sent or as read. */
export interface ReportBlock {
  /** the stream reported on */
  ssrc: number;
  /** lost since the previous report, in 1/256 */
  fractionLost: number;
  /** cumulative, a signed 24-bit count (duplicates can make it negative) */
  cumulativeLost: number;
  extendedHighestSeq: number;
  /** interarrival jitter, RTP timestamp units */
  jitter: number;
  /** the middle 32 bits of the NTP time of the last SR received from that stream; 0 when none */
  lastSr: number;
  /** since that SR, 1/65536 s */
  delaySinceLastSr: number;
}

/** What one of the bot's compound packets says, as far as a two-party call needs it. */
export interface PeerReport {
  senderSsrc: number;
  /** from an SR: the middle 32 bits of its NTP time, echoed as LSR in our next report */
  srNtpMiddle?: number;
  /** the block about `aboutSsrc` (ours), when there is one */
  block?: ReportBlock;
  /** the bot has left the session (RTCP BYE) */
  bye: boolean;
}

export type RtcpResult = { ok: true; value: PeerReport } | { ok: false; error: string };

/** RFC 5761 §4: RTCP's packet types are 192-223 (200-204 in use) */
const PT_FIRST = 192;
const PT_LAST = 223;
const PT_SR = 200;
const PT_RR = 201;
const PT_BYE = 203;
const SENDER_INFO_BYTES = 20;
const BLOCK_BYTES = 24;
/** seconds from 1900-01-01 (NTP's era 0) to 1970-01-01 */
const NTP_UNIX_OFFSET = 2_208_988_800;

/**
 * RFC 5761 §4: an RTCP packet on a port RTP shares (a=rtcp-mux) is told apart by its second byte: RTCP's packet types
 * 192-223 read as RTP payload types 64-95 with either marker bit, which no audio uses. Version 2 first, so junk is
 * left to the RTP path's checks.
 */
export function isRtcp(msg: Uint8Array): boolean {
  if (msg.length < 2 || msg[0]! >> 6 !== 2) return false;
  const pt = msg[1]! & 0x7f;
  return pt >= 64 && pt <= 95;
}

/**
 * The wallclock of an SR, from the monotonic clock anchored once at process start (performance.timeOrigin): an SR's
 * NTP time is echoed back to us as LSR, and round-trip times are the difference of two of ours, so it must never
 * step the way Date.now() can.
 */
export function ntpNow(): NtpTime {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return { seconds: (seconds + NTP_UNIX_OFFSET) >>> 0, fraction: Math.floor(((ms - seconds * 1000) / 1000) * 2 ** 32) >>> 0 };
}

/** The middle 32 bits of an NTP time (§6.4.1 LSR): 16 bits of seconds, 16 of fraction. */
export function ntpMiddle(t: NtpTime): number {
  return (((t.seconds & 0xffff) << 16) | (t.fraction >>> 16)) >>> 0;
}

/**
 * One compound packet (§6.1): an SR when `sender` is given (we sent RTP lately), else an RR; at most one report block
 * (a call has one other source); the SDES CNAME every compound packet must carry; a BYE last when leaving. `sdes`: our SDES
 * CNAME packet (rtp-packet's buildSDES), built once per session.
 */
export function buildCompound(opts: { ssrc: number; sender?: SenderInfo; block?: ReportBlock; sdes: Buffer; bye?: boolean }): Buffer {
  const { ssrc, sender, block } = opts;
  const length = 8 + (sender ? SENDER_INFO_BYTES : 0) + (block ? BLOCK_BYTES : 0);
  const report = Buffer.alloc(length);
  report[0] = 0x80 | (block ? 1 : 0);
  report[1] = sender ? PT_SR : PT_RR;
  report.writeUInt16BE(length / 4 - 1, 2);
  report.writeUInt32BE(ssrc >>> 0, 4);
  let at = 8;
  if (sender) {
    report.writeUInt32BE(sender.ntp.seconds >>> 0, at);
    report.writeUInt32BE(sender.ntp.fraction >>> 0, at + 4);
    report.writeUInt32BE(sender.rtpTimestamp >>> 0, at + 8);
    report.writeUInt32BE(sender.packetCount >>> 0, at + 12);
    report.writeUInt32BE(sender.octetCount >>> 0, at + 16);
    at += SENDER_INFO_BYTES;
  }
  if (block) {
    report.writeUInt32BE(block.ssrc >>> 0, at);
    report[at + 4] = block.fractionLost;
    // §6.4.1: signed 24 bits, clamped rather than wrapped
    report.writeIntBE(Math.max(-0x800000, Math.min(0x7fffff, block.cumulativeLost)), at + 5, 3);
    report.writeUInt32BE(block.extendedHighestSeq >>> 0, at + 8);
    report.writeUInt32BE(block.jitter >>> 0, at + 12);
    report.writeUInt32BE(block.lastSr >>> 0, at + 16);
    report.writeUInt32BE(block.delaySinceLastSr >>> 0, at + 20);
  }
  return Buffer.concat(opts.bye ? [report, opts.sdes, buildBYE([ssrc])] : [report, opts.sdes]);
}

/**
 * One of the bot's datagrams, checked as RFC 3550 A.2 does (version 2, RTCP packet types, the packets' lengths
 * adding up to the datagram's) and read for the block about `ourSsrc`. A.2 also wants an SR or RR first; that is not
 * asked: peers send lone APP packets (baresip's "PING", every few seconds) and RFC 5506 reduced-size RTCP, which hold
 * nothing for us but are not anyone's mistake. Never throws.
 */
export function readCompound(buf: Buffer, ourSsrc: number): RtcpResult {
  if (buf.length < 8) return fail(`RTCP packet of ${buf.length} bytes`);
  if (buf[1]! < PT_FIRST || buf[1]! > PT_LAST) return fail(`packet type ${buf[1]} is not RTCP`);
  for (let at = 0; at < buf.length; ) {
    if (buf.length - at < 4 || buf[at]! >> 6 !== 2) return fail('RTCP packet is not version 2 or is truncated');
    at += (buf.readUInt16BE(at + 2) + 1) * 4;
    if (at > buf.length) return fail('RTCP packet lengths overrun the datagram');
  }
  const value: PeerReport = { senderSsrc: buf.readUInt32BE(4), bye: false };
  // SDES, APP and feedback packets say nothing a call's figures need
  for (const p of parseRTCPCompound(buf)) {
    if (p.type === PT_SR || p.type === PT_RR) {
      if (p.type === PT_SR && p.ntpTimestampMsw !== undefined && p.ntpTimestampLsw !== undefined) {
        value.srNtpMiddle = ntpMiddle({ seconds: p.ntpTimestampMsw, fraction: p.ntpTimestampLsw });
      }
      const block = p.reports?.find((r) => r.mediaSsrc === ourSsrc);
      if (block !== undefined) {
        value.block = {
          ssrc: block.mediaSsrc,
          fractionLost: block.fractionLost,
          // 24-bit two's complement
          cumulativeLost: block.totalLost >= 0x800000 ? block.totalLost - 0x1000000 : block.totalLost,
          extendedHighestSeq: block.highestSeq,
          jitter: block.jitter,
          lastSr: block.lastSR,
          delaySinceLastSr: block.delaySinceLastSR,
        };
      }
    } else if (p.type === PT_BYE) {
      value.bye = true;
    }
  }
  return { ok: true, value };
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
