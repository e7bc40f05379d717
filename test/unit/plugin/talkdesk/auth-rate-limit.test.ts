import { describe, expect, it } from 'vitest';
import { AuthRateLimiter, sourceKey } from '../../../../plugin/talkdesk/auth-rate-limit.js';

function limiter(opts: { maxFailures?: number; windowMs?: number; blockMs?: number; maxEntries?: number } = {}) {
  let t = 1_000;
  const l = new AuthRateLimiter({ maxFailures: 3, windowMs: 60_000, blockMs: 300_000, maxEntries: 100, ...opts, now: () => t });
  return { l, advance: (ms: number) => (t += ms) };
}

describe('AuthRateLimiter', () => {
  it('blocks a source at its Nth failure within the window, for blockMs, then lets it try again', () => {
    const { l, advance } = limiter();
    expect(l.recordFailure('192.0.2.1')).toBe(false);
    expect(l.recordFailure('192.0.2.1')).toBe(false);
    expect(l.blockedFor('192.0.2.1')).toBe(0);
    expect(l.recordFailure('192.0.2.1')).toBe(true);
    expect(l.blockedFor('192.0.2.1')).toBe(300_000);
    expect(l.blockedFor('192.0.2.2')).toBe(0); // another source is not touched
    advance(299_999);
    expect(l.blockedFor('192.0.2.1')).toBe(1);
    advance(1);
    expect(l.blockedFor('192.0.2.1')).toBe(0);
  });

  it('failures spread wider than the window never block', () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 20; i++) {
      expect(l.recordFailure('192.0.2.1')).toBe(false);
      advance(30_001); // two failures per window at most
    }
  });

  it('memory stays bounded under a spray from many addresses: oldest forgotten first', () => {
    const { l } = limiter({ maxEntries: 100 });
    for (let i = 0; i < 10_000; i++) l.recordFailure(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(l.size).toBe(100);
  });

  it('expired entries are swept lazily by later failures, with no timer', () => {
    const { l, advance } = limiter({ maxEntries: 1_000 });
    for (let i = 0; i < 50; i++) l.recordFailure(`10.0.0.${i}`);
    expect(l.size).toBe(50);
    advance(60_000);
    for (let i = 0; i < 50; i++) l.recordFailure('198.51.100.7');
    expect(l.size).toBe(1);
  });

  it('counts an IPv6 /64 as one source, and IPv4-mapped IPv6 as the IPv4 address', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe(sourceKey('2001:0db8:0001:0002:ffff:1:2:3'));
    expect(sourceKey('2001:db8:1:2::1')).not.toBe(sourceKey('2001:db8:1:3::1'));
    expect(sourceKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(sourceKey(undefined)).toBe('unknown');
    const { l } = limiter();
    for (let i = 1; i <= 3; i++) l.recordFailure(`2001:db8:1:2::${i}`);
    expect(l.blockedFor('2001:db8:1:2::ffff')).toBeGreaterThan(0);
  });
});
