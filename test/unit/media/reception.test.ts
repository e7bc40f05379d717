import { describe, expect, it } from 'vitest';
import { Reception } from '../../../media/reception.js';
import { LatencyHistogram } from '../../../media/stats.js';

/** packets of a 20 ms PCMU stream: seq from `first`, timestamp step 160, arriving every 20 ms plus `delayMs(i)` */
function feed(r: Reception, seqs: number[], delayMs: (i: number) => number = () => 0): void {
  seqs.forEach((seq, i) => r.receive(seq & 0xffff, 1000 + 20 * i + delayMs(i), (seq * 160) >>> 0));
}

describe('Reception (RFC 3550 A.3 loss, A.8 jitter)', () => {
  it('an in-order stream on time: nothing lost, nothing late, no jitter', () => {
    const r = new Reception();
    feed(r, [10, 11, 12, 13, 14]);
    expect(r.stats).toEqual({ packetsLost: 0, packetsLate: 0, jitterMs: 0, maxJitterMs: 0 });
  });

  it('gaps=2: two packets missing are lost', () => {
    const r = new Reception();
    feed(r, [1, 2, 4, 6, 7]);
    expect(r.stats).toMatchObject({ packetsLost: 2, packetsLate: 0 });
  });

  it('reordered: a late packet fills its gap and counts as late', () => {
    const r = new Reception();
    feed(r, [1, 2, 4, 3, 5]);
    expect(r.stats).toMatchObject({ packetsLost: 0, packetsLate: 1 });
  });

  it('wraps past 65535 without counting loss', () => {
    const r = new Reception();
    feed(r, [65533, 65534, 65535, 65536, 65537]);
    expect(r.stats.packetsLost).toBe(0);
  });

  it('a new sender (SSRC change) starts a new count and keeps what the old one lost', () => {
    const r = new Reception();
    feed(r, [1, 3]);
    r.restart();
    feed(r, [5000, 5001, 5003]);
    expect(r.stats.packetsLost).toBe(2);
  });

  it('a jump beyond MAX_DROPOUT is a new run (a new pcap), not loss', () => {
    const r = new Reception();
    feed(r, [1, 2, 40_000, 40_001]);
    expect(r.stats.packetsLost).toBe(0);
  });

  it('jitter=5ms: arrivals alternating 0 and 5 ms late converge to ~5 ms', () => {
    const r = new Reception();
    feed(r, Array.from({ length: 400 }, (_, i) => i), (i) => (i % 2) * 5);
    expect(r.stats.jitterMs).toBeGreaterThan(4.5);
    expect(r.stats.jitterMs).toBeLessThanOrEqual(5);
    expect(r.stats.maxJitterMs).toBeGreaterThanOrEqual(r.stats.jitterMs);
  });

  it('telephone-event packets (no timestamp given) count for loss but not jitter', () => {
    const r = new Reception();
    r.receive(1, 0, 0);
    r.receive(2, 500);
    r.receive(3, 520, 320); // transit 3840 − 0 units: jitter = 3840 / 16 = 240 units = 30 ms
    expect(r.stats).toMatchObject({ packetsLost: 0, jitterMs: 30 });
  });
});

describe('LatencyHistogram.countsAtOrBelow', () => {
  it('gives cumulative counts at le edges and the sum', () => {
    const h = new LatencyHistogram(-2, 100, 0.1);
    for (const v of [-0.5, 0.05, 0.3, 0.3, 1.5, 7, 250]) h.record(v);
    expect(h.countsAtOrBelow([0, 0.5, 1, 2, 10, 100])).toEqual([1, 4, 4, 5, 6, 6]);
    expect(h.count).toBe(7);
    expect(h.sumMs).toBeCloseTo(258.65, 6);
  });
});
