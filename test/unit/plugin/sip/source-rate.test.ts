import { describe, expect, it } from 'vitest';
import { PerSourceInterval } from '../../../../plugin/sip/embedded/source-rate.js';

describe('PerSourceInterval', () => {
  it('grants one per source per interval, and again once it has passed', () => {
    let now = 0;
    const limit = new PerSourceInterval(1000, 100, () => now);
    expect(limit.take('192.0.2.1')).toBe(true);
    expect(limit.take('192.0.2.1')).toBe(false);
    expect(limit.take('192.0.2.2')).toBe(true);
    now = 999;
    expect(limit.take('192.0.2.1')).toBe(false);
    now = 1000;
    expect(limit.take('192.0.2.1')).toBe(true);
  });

  it('counts an IPv6 /64 as one source, and forgets expired sources without a timer', () => {
    let now = 0;
    const limit = new PerSourceInterval(1000, 100, () => now);
    expect(limit.take('2001:db8::1')).toBe(true);
    expect(limit.take('2001:db8::2')).toBe(false);
    now = 5000;
    expect(limit.take('198.51.100.1')).toBe(true);
    expect(limit.size).toBe(1);
  });

  it('stays bounded under a spray from many sources', () => {
    const limit = new PerSourceInterval(60_000, 100, () => 0);
    for (let i = 0; i < 10_000; i++) limit.take(`10.0.${i >> 8}.${i & 255}`);
    expect(limit.size).toBe(100);
  });
});
