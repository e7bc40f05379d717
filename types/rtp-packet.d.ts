// rtp-packet 0.4.2 ships no types: only what this project calls, as read from its source (src/rtp.js, src/dtmf.js,
// src/srtp.js).
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
  }
}
