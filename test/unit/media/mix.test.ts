import { describe, expect, it } from 'vitest';
import { LINEAR_TO_ULAW, mixMulaw, TwoTrackMixer, ULAW_TO_LINEAR } from '../../../media/mix.js';

const SILENCE = 0xff;

describe('μ-law tables', () => {
  it('decode to the G.711 values, and every code survives decode → encode (0x7f, the other zero, becomes 0xff)', () => {
    expect([ULAW_TO_LINEAR[0xff], ULAW_TO_LINEAR[0x7f], ULAW_TO_LINEAR[0x00], ULAW_TO_LINEAR[0x80], ULAW_TO_LINEAR[0xfe]]).toEqual([
      0, 0, -32124, 32124, 8,
    ]);
    for (let code = 0; code < 256; code++) {
      expect(LINEAR_TO_ULAW[ULAW_TO_LINEAR[code]! + 32768]).toBe(code === 0x7f ? 0xff : code);
    }
  });

  it('encode is monotonic over the whole 16-bit range', () => {
    let last = -Infinity;
    for (let s = -32768; s < 32768; s += 7) {
      const back = ULAW_TO_LINEAR[LINEAR_TO_ULAW[s + 32768]!]!;
      expect(back).toBeGreaterThanOrEqual(last);
      last = back;
    }
  });
});

describe('mixMulaw', () => {
  it('mixing with silence changes nothing; two equal halves make the whole; loud sums clip instead of wrapping', () => {
    const a = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const out = Buffer.alloc(256);
    mixMulaw(a, Buffer.alloc(256, SILENCE), out);
    expect([...out]).toEqual([...a].map((c) => (c === 0x7f ? 0xff : c)));

    const half = LINEAR_TO_ULAW[1000 + 32768]!;
    const one = Buffer.alloc(1);
    mixMulaw(Buffer.of(half), Buffer.of(half), one);
    expect(Math.abs(ULAW_TO_LINEAR[one[0]!]! - 2 * ULAW_TO_LINEAR[half]!)).toBeLessThanOrEqual(64);

    mixMulaw(Buffer.of(0x80, 0x00), Buffer.of(0x80, 0x00), out.subarray(0, 2)); // +max + +max, -max + -max
    expect([out[0], out[1]]).toEqual([0x80, 0x00]);
  });
});

describe('TwoTrackMixer', () => {
  it('emits the mix of both tracks as soon as both have audio, whatever the frame sizes', () => {
    const emitted: Buffer[] = [];
    const mixer = new TwoTrackMixer((b) => emitted.push(b));
    mixer.push(0, Buffer.alloc(320, SILENCE));
    expect(emitted).toEqual([]);
    mixer.push(1, Buffer.alloc(160, 0x90));
    mixer.push(1, Buffer.alloc(160, 0x90));
    expect(Buffer.concat(emitted)).toEqual(Buffer.alloc(320, 0x90));
  });

  it('a track that stays silent does not hold the other back beyond maxSkewBytes', () => {
    const emitted: Buffer[] = [];
    const mixer = new TwoTrackMixer((b) => emitted.push(b), 480);
    for (let i = 0; i < 10; i++) mixer.push(0, Buffer.alloc(160, 0x10 + i));
    const out = Buffer.concat(emitted);
    expect(out.length).toBe(1600 - 480);
    expect(out.subarray(0, 160)).toEqual(Buffer.alloc(160, 0x10)); // in order, unaltered
    // the other track coming back mixes from where the first one is now
    mixer.push(1, Buffer.alloc(480, SILENCE));
    expect(Buffer.concat(emitted).length).toBe(1600);
  });
});
