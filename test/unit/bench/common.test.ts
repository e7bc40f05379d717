import { describe, expect, it } from 'vitest';
import { FRAME_BYTES, SILENT_FRAME_BASE64, packetCountError, readMarker, speechFrameBase64, writeSpeechFrame } from '../../../bench/common.js';
import { isSilentFrame } from '../../../media/silence.js';

// The bench counts a marked frame that never reaches the bot as speech lost: it must be speech to the playout
// buffer, which may drop or shorten silence, and the silence between words must carry no marker.
describe('bench frames', () => {
  it('a speech frame is marked and is speech to media/silence.ts, in both of its encodings', () => {
    const frame = Buffer.alloc(FRAME_BYTES);
    writeSpeechFrame(frame, 0, 4242);
    expect(readMarker(frame, 0)).toBe(4242);
    expect(isSilentFrame(frame)).toBe(false);
    expect(Buffer.from(speechFrameBase64(4242), 'base64')).toEqual(frame);
  });

  it('a silent frame is pure μ-law silence with no marker anywhere', () => {
    const frame = Buffer.from(SILENT_FRAME_BASE64, 'base64');
    expect(frame).toEqual(Buffer.alloc(FRAME_BYTES, 0xff));
    expect(isSilentFrame(frame)).toBe(true);
    for (let o = 0; o < FRAME_BYTES; o++) expect(readMarker(frame, o)).toBe(-1);
  });

  it('a speech frame holds its marker only at its start, so the bot finds each frame once', () => {
    const frame = Buffer.alloc(FRAME_BYTES);
    writeSpeechFrame(frame, 0, 7);
    for (let o = 1; o < FRAME_BYTES; o++) expect(readMarker(frame, o)).toBe(-1);
  });
});

// A call's RTP at the bot: arrival times on the plugin's 20 ms grid, with RTP timestamps one frame apart.
function arrivals(frames: number, { jitter = 0, lost = [] as number[], moveAt = -1, moveMs = 0 } = {}): { offsets: number[]; lastFrame: number } {
  const offsets: number[] = [];
  let lastFrame = 0;
  for (let f = 0; f < frames; f++) {
    if (lost.includes(f)) continue;
    const arrival = f * 20 + (f >= moveAt && moveAt >= 0 ? moveMs : 0) + ((f * 7919) % 5) * jitter;
    offsets.push(arrival - f * 20);
    lastFrame = f;
  }
  return { offsets, lastFrame };
}

describe('packetCountError', () => {
  it('is 0 for a call that sent a packet every 20 ms, jitter or not', () => {
    const { offsets, lastFrame } = arrivals(1000, { jitter: 0.5 });
    expect(packetCountError(offsets, lastFrame, 0, 9)).toBeCloseTo(0, 5);
  });

  it('counts a packet that never came', () => {
    const { offsets, lastFrame } = arrivals(1000, { lost: [500] });
    expect(packetCountError(offsets, lastFrame, 0, 9)).toBeCloseTo(-1, 5);
  });

  it('owes nothing for a move the plugin made, and a packet for one that it did not say', () => {
    const { offsets, lastFrame } = arrivals(1000, { moveAt: 400, moveMs: 20 });
    expect(packetCountError(offsets, lastFrame, 20, 9)).toBeCloseTo(0, 5);
    expect(packetCountError(offsets, lastFrame, 0, 9)).toBeCloseTo(-1, 5);
  });

  it("does not move with a stall of the receiver's at either edge", () => {
    const { offsets, lastFrame } = arrivals(1000);
    // the first three packets read 30, 10 and 0 ms late, the last two 15 and 5 ms late: read in a burst after a stall
    for (const [i, late] of [[0, 30], [1, 10], [2, 0], [998, 15], [999, 5]] as const) offsets[i]! += late;
    expect(packetCountError(offsets, lastFrame, 0, 9)).toBeCloseTo(0, 5);
  });
});
