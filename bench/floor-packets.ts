/**
 * The floor's work per packet, the same in floor.ts and floor-worker.ts: what any bridge must do, nothing more.
 */
export const FRAME = 160;

/** A new PCMU packet: the fixed RTP header, then `frame`, or μ-law silence without one. */
export function rtpPacket(seq: number, ts: number, ssrc: number, frame: Uint8Array | undefined): Buffer {
  const pkt = Buffer.allocUnsafe(12 + FRAME);
  pkt[0] = 0x80;
  pkt[1] = 0;
  pkt.writeUInt16BE(seq, 2);
  pkt.writeUInt32BE(ts, 4);
  pkt.writeUInt32BE(ssrc, 8);
  if (frame === undefined) pkt.fill(0xff, 12);
  else pkt.set(frame.subarray(0, FRAME), 12);
  return pkt;
}

/** The caller's audio in a Talkdesk frame, or undefined when it is not a media frame. */
export function callerAudio(data: Buffer): Buffer | undefined {
  const frame = JSON.parse(data.toString()) as { event?: string; media?: { payload?: string } };
  if (frame.event !== 'media' || frame.media?.payload === undefined) return undefined;
  return Buffer.from(frame.media.payload, 'base64');
}
