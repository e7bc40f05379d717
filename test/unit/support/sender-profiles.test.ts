import { describe, expect, it } from 'vitest';
import {
  PROFILES,
  SENDER_PROFILES,
  parseSenderProfile,
  senderChunks,
  senderSchedule,
  type Chunk,
} from '../../support/sender-profiles.js';

const SECOND = 8000; // bytes of μ-law
const MINUTE = 60 * SECOND;

/** Chunks sent at the same instant as the one before: what arrives together. */
function groups(chunks: Chunk[]): Chunk[][] {
  const out: Chunk[][] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0]!.atMs === c.atMs) last.push(c);
    else out.push([c]);
  }
  return out;
}

describe('sender profiles', () => {
  describe.each(SENDER_PROFILES)('profile=%s', (profile) => {
    // 61 s and a half frame: a last chunk shorter than the rest
    const total = MINUTE + SECOND + 80;
    const chunks = senderChunks(profile, total, 7);

    it('sends every byte exactly once, in order, at times that never go backwards', () => {
      let offset = 0;
      let at = 0;
      for (const c of chunks) {
        expect(c.offset).toBe(offset);
        expect(c.bytes).toBeGreaterThan(0);
        expect(c.atMs).toBeGreaterThanOrEqual(at);
        offset += c.bytes;
        at = c.atMs;
      }
      expect(offset).toBe(total);
      expect(chunks[chunks.length - 1]!.bytes).toBe(80);
    });

    it('is the same for the same seed, and never ends without a length', () => {
      expect(senderChunks(profile, total, 7)).toEqual(chunks);
      const endless = senderSchedule(profile);
      for (let i = 0; i < chunks.length + 10; i++) expect(endless.next().done).toBe(false);
    });
  });

  it('steady: 160 bytes at exactly k · 20 ms', () => {
    const chunks = senderChunks('steady', 10 * SECOND);
    expect(chunks).toHaveLength(500);
    chunks.forEach((c, k) => expect(c).toEqual({ atMs: k * 20, nominalMs: k * 20, offset: k * 160, bytes: 160 }));
  });

  it('slow-40ms: 320-byte frames at 0.94× real time, one minute of audio taking 63.8 s', () => {
    const chunks = senderChunks('slow-40ms', MINUTE);
    expect(new Set(chunks.map((c) => c.bytes))).toEqual(new Set([320]));
    chunks.forEach((c, k) => expect(c.atMs).toBeCloseTo((k * 40) / 0.94, 9));
    // the nominal time is the sender's own: its slowness is its, not the plugin's delay
    chunks.forEach((c) => expect(c.nominalMs).toBe(c.atMs));
    const last = chunks[chunks.length - 1]!;
    expect((last.atMs + 40 / 0.94) / 1000).toBeCloseTo(60 / 0.94, 6);
  });

  it('fast-2pct: 20 ms frames at 1.02× real time, one minute of audio in 58.8 s', () => {
    const chunks = senderChunks('fast-2pct', MINUTE);
    chunks.forEach((c, k) => expect(c.atMs).toBeCloseTo((k * 20) / 1.02, 9));
    const last = chunks[chunks.length - 1]!;
    expect((last.atMs + 20 / 1.02) / 1000).toBeCloseTo(60 / 1.02, 6);
  });

  it('jitter-40: each frame within ±40 ms of k · 20 ms, spread over that range, seeds differing', () => {
    const chunks = senderChunks('jitter-40', MINUTE, 3);
    const offsets = chunks.map((c, k) => c.atMs - k * 20);
    expect(Math.max(...offsets)).toBeLessThanOrEqual(40);
    expect(Math.min(...offsets.slice(2))).toBeGreaterThanOrEqual(-40);
    // uniform over ±40, not a constant delay: both ends of the range are reached
    expect(Math.max(...offsets)).toBeGreaterThan(35);
    expect(Math.min(...offsets)).toBeLessThan(-35);
    chunks.forEach((c, k) => expect(c.nominalMs).toBe(k * 20));
    expect(senderChunks('jitter-40', MINUTE, 4).map((c) => c.atMs)).not.toEqual(chunks.map((c) => c.atMs));
  });

  describe.each([100, 200, 500] as const)('burst-%i', (ms) => {
    const chunks = senderChunks(`burst-${ms}`, 20 * SECOND);

    it(`holds ${ms} ms of audio at 2 s and every 4 s after, then sends it at once with the frame due then`, () => {
      const bursts = groups(chunks).filter((g) => g.length > 1);
      expect(bursts.map((g) => g[0]!.atMs)).toEqual([2000 + ms, 6000 + ms, 10_000 + ms, 14_000 + ms, 18_000 + ms]);
      for (const g of bursts) {
        // the held frames, plus the one whose time it is when the sender resumes
        expect(g).toHaveLength(ms / 20 + 1);
        expect(g[0]!.nominalMs).toBe(g[0]!.atMs - ms);
      }
    });

    it('sends every other frame on its time, so the stream is back on its times after each burst', () => {
      const late = chunks.filter((c) => c.atMs !== c.nominalMs);
      expect(late).toHaveLength(5 * (ms / 20));
      expect(Math.max(...late.map((c) => c.atMs - c.nominalMs))).toBe(ms);
      chunks.forEach((c, k) => expect(c.nominalMs).toBe(k * 20));
    });
  });

  it('pause-1s: nothing for 1 s after 2 s, then on at real time from where it was, with no catch-up burst', () => {
    const chunks = senderChunks('pause-1s', 10 * SECOND);
    const gaps = chunks.slice(1).map((c, i) => c.atMs - chunks[i]!.atMs);
    expect(Math.max(...gaps)).toBe(1020);
    expect(gaps.filter((g) => g !== 20)).toEqual([1020]);
    chunks.forEach((c, k) => expect(c.atMs).toBe(k < 100 ? k * 20 : k * 20 + 1000));
    // the sender's own pause moves its nominal times: it is not the plugin's delay
    chunks.forEach((c) => expect(c.nominalMs).toBe(c.atMs));
  });

  it('sends everything at once at infinite speed (the fake client with realtime: false)', () => {
    const chunks = senderChunks({ frameBytes: 320, speed: Infinity }, 1000);
    expect(chunks.map((c) => [c.atMs, c.bytes])).toEqual([[0, 320], [0, 320], [0, 320], [0, 40]]);
  });

  it('parses profile names for a command line, with the choices in the error', () => {
    expect(parseSenderProfile('burst-200')).toEqual({ ok: true, profile: 'burst-200' });
    const bad = parseSenderProfile('burst-300');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toContain('steady, slow-40ms, jitter-40');
    expect(Object.keys(PROFILES)).toEqual([...SENDER_PROFILES]);
  });
});
