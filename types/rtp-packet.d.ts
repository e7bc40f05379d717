// rtp-packet 0.4.2 ships no types: only what this project calls, as read from its source (src/rtp.js, src/dtmf.js,
// src/srtp.js, src/rtcp.js).
declare module 'rtp-packet' {
  export interface RtpPacketFields {
    payloadType: number;
    sequenceNumber: number;
    timestamp: number;
    ssrc: number;
    marker?: boolean;
    payload: Uint8Array;
  }
  export interface ParsedRtpPacket extends RtpPacketFields {
    version: number;
    padding: boolean;
    extension: boolean;
    csrcCount: number;
    marker: boolean;
    csrc: number[];
    /** zero-copy view into the datagram */
    payload: Buffer;
    headerLength: number;
  }
  /** null when shorter than 12 bytes, version is not 2, or the CSRC list is truncated */
  export function parse(buf: Uint8Array): ParsedRtpPacket | null;
  /** allocates one new Buffer per call */
  export function serialize(pkt: RtpPacketFields): Buffer;

  export interface DtmfEvent {
    event: number;
    tone: string;
    end: boolean;
    volume: number;
    duration: number;
  }
  /** RFC 4733 payload; null for a short payload or an event above 15. A Buffer: it reads with readUInt16BE. */
  export function parseDtmf(payload: Buffer): DtmfEvent | null;

  export class DtmfPacketizer {
    constructor(opts: {
      ssrc: number;
      payloadType: number;
      clockRate?: number;
      nextSequenceNumber?: () => number;
      initialSequenceNumber?: number;
    });
    startEvent(tone: string, rtpTimestamp: number): void;
    update(deltaMs: number): Buffer;
    endEvent(deltaMs: number): Buffer[];
  }

  export interface SrtpOptions {
    /** default AES_CM_128_HMAC_SHA1_80 (16 B key, 14 B salt, 10 B tag) */
    profile?: 'AES_CM_128_HMAC_SHA1_80' | 'AEAD_AES_128_GCM' | 'AEAD_AES_256_GCM';
    /** RFC 3711 §3.3.2 window of 128 packets per SSRC; default true */
    replayProtection?: boolean;
  }
  /** RFC 3711 SRTP. The positional form keys both directions alike; each direction keeps its own state. */
  export class SrtpSession {
    /** throws on a key or salt of the wrong length for the profile */
    constructor(masterKey: Uint8Array, masterSalt: Uint8Array, opts?: SrtpOptions);
    /** a new Buffer (input length + tag); null for a packet under 12 bytes */
    encryptRtp(rtp: Buffer): Buffer | null;
    /** a new Buffer without the tag; null on a failed authentication, a replay or a packet too short */
    decryptRtp(srtp: Buffer): Buffer | null;
    /** SRTCP (§3.4): a new Buffer with E‖index and the tag */
    encryptRtcp(rtcp: Buffer): Buffer | null;
    /** the plain RTCP, or null as decryptRtp */
    decryptRtcp(srtcp: Buffer): Buffer | null;
  }

  /** One report block of an SR or RR, field names as rtp-packet gives them. */
  export interface RtcpReportBlockFields {
    mediaSsrc: number;
    fractionLost: number;
    /** the raw 24-bit field, unsigned */
    totalLost: number;
    highestSeq: number;
    jitter: number;
    lastSR: number;
    delaySinceLastSR: number;
  }
  /** parseRTCP's result: the common header always; the rest by type (an RR under 32 bytes gets no `reports`). */
  export interface ParsedRtcpPacket {
    version: number;
    padding: boolean;
    type: number;
    length: number;
    name?: 'SR' | 'RR' | 'SDES' | 'BYE' | 'PLI' | 'NACK' | 'FIR' | 'REMB' | 'TransportCC';
    ssrc?: number;
    ntpTimestampMsw?: number;
    ntpTimestampLsw?: number;
    rtpTimestamp?: number;
    packetCount?: number;
    octetCount?: number;
    reports?: RtcpReportBlockFields[];
    cname?: string;
    ssrcs?: number[];
    reason?: string;
  }
  /** SR without report blocks (28 bytes); the NTP time now when `ntpTimestamp` ([seconds, fraction]) is absent */
  export function buildSR(opts: { ssrc: number; ntpTimestamp?: [number, number]; rtpTimestamp: number; packetCount: number; octetCount: number }): Buffer;
  /** RR with exactly one report block (32 bytes) */
  export function buildRR(opts: { ssrc: number } & RtcpReportBlockFields): Buffer;
  /** Each packet of a compound datagram, parsed; stops at the first whose length overruns it. Never throws. */
  export function parseRTCPCompound(buf: Buffer): ParsedRtcpPacket[];
  /** SDES with one chunk holding one CNAME item; a new Buffer */
  export function buildSDES(ssrc: number, cname: string): Buffer;
  /** BYE for `ssrcs`, with an optional reason; a new Buffer */
  export function buildBYE(ssrcs: number[], reason?: string): Buffer;
}
