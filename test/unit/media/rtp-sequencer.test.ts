import { parse } from 'rtp-packet';
import { describe, expect, it } from 'vitest';
import { RTP_HEADER_BYTES, RtpSequencer } from '../../../media/rtp-sequencer.js';

function header(seq: RtpSequencer, pt: number): NonNullable<ReturnType<typeof parse>> {
  const pkt = Buffer.alloc(RTP_HEADER_BYTES + 1);
  seq.writeHeader(pkt, pt);
  return parse(pkt)!;
}

describe('RtpSequencer', () => {
  it('writes RFC 3550 headers that rtp-packet reads back: one SSRC, consecutive sequence numbers, the marker once', () => {
    const s = new RtpSequencer();
    const a = header(s, 0);
    s.frameDone(160);
    const b = header(s, 0);
    expect([a.version, a.payloadType, a.ssrc, a.marker]).toEqual([2, 0, s.ssrc, true]);
    expect(b.marker).toBe(false);
    expect(b.sequenceNumber).toBe((a.sequenceNumber + 1) & 0xffff);
    expect(b.timestamp).toBe((a.timestamp + 160) >>> 0);
  });

  it('shares the sequence space with packets written elsewhere, and marks the talkspurt after them', () => {
    const s = new RtpSequencer();
    const first = header(s, 0).sequenceNumber;
    const taken = [s.nextSequenceNumber(), s.nextSequenceNumber()];
    s.talkspurt();
    const next = header(s, 0);
    expect(taken).toEqual([(first + 1) & 0xffff, (first + 2) & 0xffff]);
    expect(next.sequenceNumber).toBe((first + 3) & 0xffff);
    expect(next.marker).toBe(true);
  });

  it('wraps the sequence number at 16 bits and the timestamp at 32', () => {
    const s = new RtpSequencer();
    const start = header(s, 0);
    for (let i = 0; i < 0x10000; i++) s.nextSequenceNumber();
    expect(header(s, 0).sequenceNumber).toBe((start.sequenceNumber + 1) & 0xffff);
    for (let i = 0; i < 2 ** 32 / 2 ** 30; i++) s.frameDone(2 ** 30);
    expect(s.timestamp).toBe(start.timestamp);
  });
});
