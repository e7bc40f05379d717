import { randomInt } from 'node:crypto';

export const RTP_HEADER_BYTES = 12;

/**
 * One RTP stream's numbering as it goes out (RFC 3550 §5.1): the SSRC, the sequence number every packet takes, the
 * timestamp that counts sampling instants whether sent or not, and the marker of a talkspurt's first packet
 * (RFC 3551 §4.1). Audio and RFC 4733 events share it (RFC 4733 §2.1: one SSRC, one sequence space), so whatever
 * sends takes its numbers here, and nowhere else.
 */
export class RtpSequencer {
  // RFC 3550 §5.1: random SSRC and random initial sequence number and timestamp.
  readonly ssrc = randomInt(0, 2 ** 32);
  private seq = randomInt(0, 2 ** 16);
  private ts = randomInt(0, 2 ** 32);
  /** The first packet sent is a talkspurt's first. */
  private marker = true;

  /** The media time of the frame being sent now. */
  get timestamp(): number {
    return this.ts;
  }

  /**
   * The fixed header of this frame's packet, written at the start of `pkt`: version 2, no padding, extension or
   * CSRC; the marker if a talkspurt begins here. Takes a sequence number and clears the marker.
   *
   *  0                   1                   2                   3
   *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
   * |                           timestamp                           |
   * |           synchronization source (SSRC) identifier            |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   */
  writeHeader(pkt: Buffer, payloadType: number): void {
    pkt[0] = 0x80;
    pkt[1] = this.marker ? 0x80 | payloadType : payloadType;
    pkt.writeUInt16BE(this.nextSequenceNumber(), 2);
    pkt.writeUInt32BE(this.ts, 4);
    pkt.writeUInt32BE(this.ssrc, 8);
    this.marker = false;
  }

  /** For a packet someone else writes the header of (rtp-packet's DtmfPacketizer). */
  readonly nextSequenceNumber = (): number => {
    const seq = this.seq;
    this.seq = (seq + 1) & 0xffff;
    return seq;
  };

  /** A frame's time has passed, whether its packet went or not. */
  frameDone(samples: number): void {
    this.ts = (this.ts + samples) >>> 0;
  }

  /** The next packet begins a talkspurt: after a pause in sending, or after an RFC 4733 event. */
  talkspurt(): void {
    this.marker = true;
  }
}
