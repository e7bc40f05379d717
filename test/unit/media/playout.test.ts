import { describe, expect, it } from 'vitest';
import { PlayoutBuffer } from '../../../media/playout.js';

/** Distinct, non-silence bytes so any reordering or loss shows. */
function ramp(n: number, start = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) % 255);
}

describe('PlayoutBuffer', () => {
  it('splits 40 ms chunks into 160-byte frames, bit-exact', () => {
    const b = new PlayoutBuffer({ maxMs: 200 });
    const audio = ramp(320 * 3);
    for (let i = 0; i < 3; i++) b.push(audio.subarray(i * 320, (i + 1) * 320));
    const frames = Array.from({ length: 6 }, () => b.pull());
    expect(frames.every((f) => f.length === 160)).toBe(true);
    expect(Buffer.concat(frames).equals(Buffer.from(audio))).toBe(true);
    expect(b.stats).toMatchObject({ framesOut: 6, silenceFrames: 0, droppedBytes: 0, maxDepthBytes: 960 });
  });

  it('joins 7-byte chunks into 160-byte frames, bit-exact across ring wrap-around', () => {
    const b = new PlayoutBuffer(); // 60 ms = 480-byte ring, wraps many times below
    const audio = ramp(7 * 400);
    const out: Buffer[] = [];
    for (let off = 0; off < audio.length; off += 7) {
      b.push(audio.subarray(off, off + 7));
      if (b.depthBytes >= 160) out.push(b.pull());
    }
    const sent = Buffer.concat(out);
    expect(sent.length).toBe(Math.floor(audio.length / 160) * 160);
    expect(sent.equals(Buffer.from(audio.subarray(0, sent.length)))).toBe(true);
    expect(b.depthBytes).toBe(audio.length - sent.length);
    expect(b.stats.droppedBytes).toBe(0);
  });

  it('returns a new Buffer per frame, so a frame still queued in dgram is never overwritten', () => {
    const b = new PlayoutBuffer();
    b.push(ramp(320));
    const first = b.pull();
    const copy = Buffer.from(first);
    b.pull();
    expect(first.equals(copy)).toBe(true);
  });

  it('pads a short frame with μ-law silence and sends a whole silent frame when empty, counting both', () => {
    const b = new PlayoutBuffer();
    b.push(ramp(100, 1));
    const partial = b.pull();
    expect(partial.subarray(0, 100).equals(Buffer.from(ramp(100, 1)))).toBe(true);
    expect(partial.subarray(100).every((x) => x === 0xff)).toBe(true);
    const empty = b.pull();
    expect(empty.length).toBe(160);
    expect(empty.every((x) => x === 0xff)).toBe(true);
    expect(b.stats).toMatchObject({ framesOut: 2, silenceFrames: 2 });
  });

  it('keeps at most maxMs of audio by dropping the oldest', () => {
    const b = new PlayoutBuffer({ maxMs: 40 }); // 320 bytes
    const audio = ramp(500);
    b.push(audio.subarray(0, 200));
    b.push(audio.subarray(200, 500)); // 500 > 320: the first 180 bytes go
    expect(b.depthBytes).toBe(320);
    expect(b.stats.droppedBytes).toBe(180);
    expect(Buffer.concat([b.pull(), b.pull()]).equals(Buffer.from(audio.subarray(180)))).toBe(true);

    b.push(ramp(1000)); // one chunk larger than the whole buffer: only its newest 320 bytes stay
    expect(b.stats.droppedBytes).toBe(180 + 680);
    expect(Buffer.concat([b.pull(), b.pull()]).equals(Buffer.from(ramp(1000).subarray(680)))).toBe(true);
    expect(b.stats.maxDepthBytes).toBe(320);
  });

  it('writes a frame into a packet at an offset with pullInto', () => {
    const b = new PlayoutBuffer();
    b.push(ramp(160, 9));
    const pkt = Buffer.alloc(172, 0xaa);
    b.pullInto(pkt, 12);
    expect(pkt.subarray(0, 12).every((x) => x === 0xaa)).toBe(true);
    expect(pkt.subarray(12).equals(Buffer.from(ramp(160, 9)))).toBe(true);
  });

  it('clear() empties it without counting drops', () => {
    const b = new PlayoutBuffer();
    b.push(ramp(300));
    b.clear();
    expect(b.depthBytes).toBe(0);
    expect(b.stats.droppedBytes).toBe(0);
    expect(b.pull().every((x) => x === 0xff)).toBe(true);
  });

  it('rejects a maxMs smaller than one frame', () => {
    expect(() => new PlayoutBuffer({ maxMs: 10 })).toThrow(RangeError);
  });
});
