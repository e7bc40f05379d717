import { afterEach, describe, expect, it, vi } from 'vitest';
import { CallWatchdog, Liveness } from '../../../../plugin/call/watchdog.js';

const LIMITS = { rtpTimeoutMs: 3000, talkdeskTimeoutMs: 5000, maxCallMs: 60_000 };

describe('Liveness: the ends a call’s counters call for, sweep by sweep', () => {
  it('a call whose counters keep moving is left alone', () => {
    const live = new Liveness(LIMITS, 0);
    for (let t = 1000, n = 1; t < 59_000; t += 1000, n++) {
      expect(live.check(t, { talkdeskFrames: n * 50, botPackets: [n * 50] })).toBeUndefined();
    }
  });

  it('no RTP from the bot for rtpTimeoutMs after the sweep that last saw a packet: media-timeout, never early', () => {
    const live = new Liveness(LIMITS, 0);
    expect(live.check(1000, { talkdeskFrames: 50, botPackets: [undefined] })).toBeUndefined(); // ringing
    expect(live.check(2000, { talkdeskFrames: 100, botPackets: [10] })).toBeUndefined(); // answered
    expect(live.check(3000, { talkdeskFrames: 150, botPackets: [60] })).toBeUndefined(); // last packets
    expect(live.check(4000, { talkdeskFrames: 200, botPackets: [60] })).toBeUndefined();
    expect(live.check(5999, { talkdeskFrames: 250, botPackets: [60] })).toBeUndefined();
    expect(live.check(6000, { talkdeskFrames: 300, botPackets: [60] })).toMatchObject({
      outcome: 'error',
      cause: 'media-timeout',
      detail: 'no RTP from the bot for 3000 ms',
    });
  });

  it('a leg that stops owing RTP (hold, recvonly) starts its silence afresh when it owes it again', () => {
    const live = new Liveness(LIMITS, 0);
    live.check(1000, { talkdeskFrames: 1, botPackets: [5] });
    live.check(2000, { talkdeskFrames: 2, botPackets: [undefined] });
    live.check(5000, { talkdeskFrames: 3, botPackets: [undefined] });
    expect(live.check(6000, { talkdeskFrames: 4, botPackets: [5] })).toBeUndefined();
    expect(live.check(8999, { talkdeskFrames: 5, botPackets: [5] })).toBeUndefined();
    expect(live.check(9000, { talkdeskFrames: 6, botPackets: [5] })?.cause).toBe('media-timeout');
  });

  it('with two legs, one silent leg is enough, and the detail says which', () => {
    const live = new Liveness(LIMITS, 0);
    live.check(1000, { talkdeskFrames: 1, botPackets: [1, 1] });
    expect(live.check(4000, { talkdeskFrames: 2, botPackets: [9, 1] })).toMatchObject({
      cause: 'media-timeout',
      detail: 'no RTP from the bot for 3000 ms on leg 2 of 2',
    });
  });

  it('no Talkdesk frame for talkdeskTimeoutMs, counted from the upgrade: talkdesk-timeout', () => {
    const live = new Liveness(LIMITS, 100);
    expect(live.check(5099, { talkdeskFrames: 0, botPackets: [] })).toBeUndefined();
    expect(live.check(5100, { talkdeskFrames: 0, botPackets: [] })).toMatchObject({ outcome: 'error', cause: 'talkdesk-timeout' });
  });

  it('a call older than maxCallMs: max-duration, even while both sides are busy', () => {
    const live = new Liveness(LIMITS, 1000);
    expect(live.check(60_999, { talkdeskFrames: 1, botPackets: [1] })).toBeUndefined();
    expect(live.check(61_000, { talkdeskFrames: 2, botPackets: [2] })).toMatchObject({ outcome: 'error', cause: 'max-duration' });
  });
});

describe('CallWatchdog: one timer for every call', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sweeps each watched check once a period, and runs no timer while nothing is watched', () => {
    vi.useFakeTimers();
    let now = 0;
    const dog = new CallWatchdog({ periodMs: 1000, now: () => now });
    const seen: Array<[string, number]> = [];
    const a = dog.watch((t) => seen.push(['a', t]));
    const b = dog.watch((t) => seen.push(['b', t]));
    expect(vi.getTimerCount()).toBe(1);
    now = 1000;
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([['a', 1000], ['b', 1000]]);
    a();
    a(); // idempotent
    now = 2000;
    vi.advanceTimersByTime(1000);
    expect(seen.slice(2)).toEqual([['b', 2000]]);
    b();
    expect(dog.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a check that throws does not keep the others from running', () => {
    const dog = new CallWatchdog();
    const ran: string[] = [];
    const stop = [
      dog.watch(() => {
        throw new Error('boom');
      }),
      dog.watch(() => ran.push('second')),
    ];
    dog.sweep();
    expect(ran).toEqual(['second']);
    for (const unwatch of stop) unwatch();
  });

  it('a check may unwatch itself (its call ended) during the sweep', () => {
    const dog = new CallWatchdog();
    const ran: string[] = [];
    const unwatchA: () => void = dog.watch(() => {
      ran.push('a');
      unwatchA();
    });
    const unwatchB = dog.watch(() => ran.push('b'));
    dog.sweep();
    dog.sweep();
    expect(ran).toEqual(['a', 'b', 'b']);
    unwatchB();
  });
});
