import { describe, expect, it, vi } from 'vitest';
import { DnsCache } from '../../../../plugin/sip/embedded/dns-cache.js';

function clock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('DnsCache: answers kept for their TTL, bounded', () => {
  it('an answer is reused until its TTL runs out, then looked up again', async () => {
    const t = clock();
    const cache = new DnsCache(10, t.now);
    const lookup = vi.fn(async () => ({ value: ['10.0.0.1'], ttlMs: 5_000 }));
    expect(await cache.get('A ccai.test', lookup)).toEqual(['10.0.0.1']);
    t.advance(4_999);
    expect(await cache.get('A ccai.test', lookup)).toEqual(['10.0.0.1']);
    expect(lookup).toHaveBeenCalledTimes(1);
    t.advance(1);
    await cache.get('A ccai.test', lookup);
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('a TTL of 0 is not kept', async () => {
    const cache = new DnsCache(10, clock().now);
    const lookup = vi.fn(async () => ({ value: 1, ttlMs: 0 }));
    await cache.get('k', lookup);
    await cache.get('k', lookup);
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('concurrent asks share the lookup in flight', async () => {
    const cache = new DnsCache(10, clock().now);
    let finish!: (v: { value: string; ttlMs: number }) => void;
    const lookup = vi.fn(() => new Promise<{ value: string; ttlMs: number }>((resolve) => (finish = resolve)));
    const both = Promise.all([cache.get('k', lookup), cache.get('k', lookup)]);
    finish({ value: 'x', ttlMs: 1_000 });
    expect(await both).toEqual(['x', 'x']);
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('a failed lookup is not kept: the next ask tries again', async () => {
    const cache = new DnsCache(10, clock().now);
    await expect(cache.get('k', () => Promise.reject(new Error('ETIMEOUT')))).rejects.toThrow('ETIMEOUT');
    expect(cache.size).toBe(0);
    expect(await cache.get('k', async () => ({ value: 2, ttlMs: 1_000 }))).toBe(2);
  });

  it('holds at most maxEntries: the one stored longest ago goes first', async () => {
    const cache = new DnsCache(2, clock().now);
    const lookup = vi.fn(async () => ({ value: 0, ttlMs: 60_000 }));
    for (const key of ['a', 'b', 'c']) await cache.get(key, lookup);
    expect(cache.size).toBe(2);
    await cache.get('b', lookup);
    await cache.get('c', lookup);
    expect(lookup).toHaveBeenCalledTimes(3);
    await cache.get('a', lookup);
    expect(lookup).toHaveBeenCalledTimes(4);
  });
});
