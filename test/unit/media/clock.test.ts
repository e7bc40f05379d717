import { createSocket } from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MediaClock } from '../../../media/clock.js';

/** A sink that records the (fake) time of each frame. */
function recorder(): { times: number[]; onFrame(): void } {
  const times: number[] = [];
  return { times, onFrame: () => times.push(Date.now()) };
}

describe('MediaClock (fake time)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const clock = (): MediaClock => new MediaClock({ now: () => Date.now() });
  /** A clock with one sink that has had its first frame, at t0 + 20. */
  const running = (): { c: MediaClock; t0: number; s: ReturnType<typeof recorder> } => {
    const c = clock();
    const t0 = Date.now();
    const s = recorder();
    c.add(s);
    vi.advanceTimersByTime(20);
    expect(s.times).toEqual([t0 + 20]);
    return { c, t0, s };
  };

  it('gives every sink exactly one frame per 20 ms, on its own phase of the 2 ms steps', () => {
    const c = clock();
    const t0 = Date.now();
    const sinks = [recorder(), recorder(), recorder()];
    for (const s of sinks) c.add(s);
    expect(c.size).toBe(3);

    vi.advanceTimersByTime(20 + 50 * 20);

    sinks.forEach((s, slot) => {
      // first frame: its slot's first step at least one frame after add
      expect(s.times[0]).toBe(t0 + 20 + 2 * slot);
      const gaps = s.times.slice(1).map((t, i) => t - s.times[i]!);
      expect(new Set(gaps)).toEqual(new Set([20]));
      expect(s.times.length).toBe(slot === 0 ? 51 : 50);
    });
    expect(c.stats.frames).toBe(151);
    expect(c.stats.lateness.count).toBe(151);
    expect(c.stats.lateness.maxMs).toBe(0);
  });

  it('places sinks in the least-loaded slot, so 20 sinks cover all 10 phases twice', () => {
    const c = clock();
    const t0 = Date.now();
    const sinks = Array.from({ length: 20 }, recorder);
    for (const s of sinks) c.add(s);
    vi.advanceTimersByTime(40);
    const phases = sinks.map((s) => (s.times[0]! - t0) % 20);
    const perPhase = new Map<number, number>();
    for (const p of phases) perPhase.set(p, (perPhase.get(p) ?? 0) + 1);
    expect([...perPhase.keys()].sort((a, b) => a - b)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    expect(new Set(perPhase.values())).toEqual(new Set([2]));    expect(c.busiestSlot).toBe(2);
  });

  // vi.setSystemTime moves Date.now() without firing timers: the next timer then runs that much late, as after a
  // blocked event loop.
  it('catches up every missed frame after the event loop was blocked, on the original grid', () => {
    const c = clock();
    const t0 = Date.now();
    const s = recorder();
    c.add(s);
    vi.advanceTimersByTime(100); // frames at +20, +40, +60, +80, +100
    expect(s.times.length).toBe(5);

    vi.setSystemTime(Date.now() + 90);
    vi.advanceTimersToNextTimer(); // fires at +210 what was due at +120: so late that it goes after the I/O that waited
    vi.advanceTimersToNextTimer(); // the setImmediate it deferred to
    // +120 … +200 were missed: all five delivered at once
    expect(s.times.length).toBe(10);
    // fake timers run the immediate a millisecond on
    expect(new Set(s.times.slice(5))).toEqual(new Set([t0 + 211]));
    expect(c.stats.lateness.maxMs).toBe(91);
    expect(c.stats.resyncs).toBe(0);

    vi.advanceTimersByTime(10); // back on the grid: next frame exactly at +220
    expect(s.times.at(-1)).toBe(t0 + 220);
    expect(s.times.length).toBe(11);
  });

  it('catches up at most 10 frames, then skips ahead and counts a resync', () => {
    const { c, t0, s } = running();

    vi.setSystemTime(t0 + 20 + 1000);
    vi.advanceTimersToNextTimer(); // now +1040: frames +40 … +1040 (51) are due
    vi.advanceTimersToNextTimer(); // the setImmediate the late timer deferred to
    expect(s.times.length).toBe(1 + 10);
    expect(c.stats.resyncs).toBe(1);
    expect(c.stats.skippedFrames).toBe(41);

    vi.advanceTimersByTime(20);
    expect(s.times.at(-1)).toBe(t0 + 1060);
    expect(s.times.length).toBe(12);
  });

  it('runs a timer only while it has sinks', () => {
    const c = clock();
    expect(vi.getTimerCount()).toBe(0);
    const a = c.add(recorder());
    const b = c.add(recorder());
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(100);
    a.remove();
    a.remove(); // idempotent
    expect(c.size).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    b.remove();
    expect(c.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts a fresh grid after being idle instead of catching up the idle time', () => {
    const c = clock();
    const first = c.add(recorder());
    vi.advanceTimersByTime(50);
    first.remove();
    vi.advanceTimersByTime(10_000);
    const s = recorder();
    const tAdd = Date.now();
    c.add(s);
    vi.advanceTimersByTime(60);
    expect(s.times).toEqual([tAdd + 20, tAdd + 40, tAdd + 60]);
    expect(c.stats.resyncs).toBe(0);
  });

  it('keeps calling the other sinks when one throws, and counts the error', () => {
    const c = clock();
    const good = recorder();
    c.add({
      onFrame: () => {
        throw new Error('boom');
      },
    });
    c.add(good);
    vi.advanceTimersByTime(20 * 5 + 2);
    expect(good.times.length).toBe(5);
    expect(c.stats.sinkErrors).toBe(5);
  });

  it('lets a sink remove itself or add another from inside onFrame', () => {
    const c = clock();
    const other = recorder();
    let frames = 0;
    const self = c.add({
      onFrame: () => {
        frames++;
        if (frames === 2) {
          self.remove();
          c.add(other);
        }
      },
    });
    vi.advanceTimersByTime(200);
    expect(frames).toBe(2);
    expect(other.times.length).toBeGreaterThanOrEqual(7);
    expect(c.size).toBe(1);
  });

  it('shifts a sink from inside its onFrame: one gap of 20 ms + the shift in whole 2 ms steps, then 20 ms again', () => {
    const c = clock();
    const cases: Array<[number, number]> = [
      [-5, -4], // earlier: toward zero
      [3, 4], // later: away from zero, so the slack asked for is never cut
      [-10, -10], // as far as half a frame earlier
      [10, -10], // half a frame later is half a frame earlier: the same grid
      [-40, 2], // at most one step short of a frame, and past half a frame made the other way round
      [40, -2],
      [0.5, 2],
      [-1.9, 0],
      [Number.NaN, 0],
    ];
    for (const [askMs, expectedMs] of cases) {
      const times: number[] = [];
      let n = 0;
      const sub = c.add({
        onFrame: () => {
          times.push(Date.now());
          if (++n === 3) sub.shift(askMs);
        },
      });
      vi.advanceTimersByTime(20 * 8);
      sub.remove();
      const gaps = times.slice(1, 6).map((t, i) => t - times[i]!);
      expect(gaps, `shift(${askMs})`).toEqual([20, 20, 20 + expectedMs, 20, 20]);
    }
  });

  it('runs a due step from poll(), as a packet arrives in the middle of a batch of I/O, not at the batch end', () => {
    const { c, t0, s } = running();
    vi.setSystemTime(t0 + 39);
    c.poll();
    expect(s.times).toHaveLength(1); // not due yet
    vi.setSystemTime(t0 + 41); // its timer has not run: the loop is busy with I/O
    c.poll();
    expect(s.times).toEqual([t0 + 20, t0 + 41]);
    c.poll();
    expect(s.times).toHaveLength(2); // once
    vi.advanceTimersByTime(40);
    // the step's own timer was disarmed, and the grid goes on at t0 + 60, t0 + 80
    expect(s.times).toEqual([t0 + 20, t0 + 41, t0 + 60, t0 + 80]);
    expect(c.stats.lateness.maxMs).toBe(1);
  });

  it('says how long the event loop has kept it from a due step: what audio read now waited in this process', () => {
    const { c, t0 } = running();
    vi.setSystemTime(t0 + 35);
    expect(c.behindMs).toBe(0); // next step due at t0 + 40
    vi.setSystemTime(t0 + 52); // its timer has not run: the loop is held up, maybe since the step before (t0 + 38)
    expect(c.behindMs).toBe(14);
    vi.advanceTimersToNextTimer(); // the late timer defers to a setImmediate: still behind
    expect(c.behindMs).toBeGreaterThanOrEqual(14);
    vi.advanceTimersToNextTimer();
    expect(c.behindMs).toBe(0); // caught up, the next step armed
    expect(clock().behindMs).toBe(0); // idle
  });

  it('leaves a step more than 2 ms late to its timer, which lets the I/O that waited in first', () => {
    const { c, t0, s } = running();
    vi.setSystemTime(t0 + 43);
    c.poll();
    expect(s.times).toEqual([t0 + 20]);
    // the late timer sets a setImmediate, which sends the frame after the I/O
    vi.advanceTimersToNextTimer();
    expect(s.times).toEqual([t0 + 20]);
    vi.advanceTimersToNextTimer();
    expect(s.times.length).toBeGreaterThanOrEqual(2);
    expect(s.times[1]).toBeGreaterThanOrEqual(t0 + 43);
  });

  it('with deferLateSteps false, runs a late step at once, from its timer or from poll(): senders on a schedule', () => {
    const c = new MediaClock({ now: () => Date.now(), deferLateSteps: false });
    const t0 = Date.now();
    const s = recorder();
    c.add(s);
    vi.advanceTimersByTime(20);
    vi.setSystemTime(t0 + 45); // the step due at t0 + 40 is 5 ms late
    c.poll();
    expect(s.times).toEqual([t0 + 20, t0 + 45]);
    // its timer (armed for t0 + 60, 15 ms ahead) held up 22 ms: fake timers fire it 15 ms after t0 + 67
    vi.setSystemTime(t0 + 67);
    vi.advanceTimersToNextTimer();
    // both overdue steps ran from the timer itself, with no setImmediate (the default clock's) in between
    expect(s.times).toEqual([t0 + 20, t0 + 45, t0 + 82, t0 + 82]);
    expect(c.behindMs).toBe(0);
  });

  it('keeps a sink that keeps moving earlier within half a frame of the grid it was added on', () => {
    const c = clock();
    const times: number[] = [];
    let n = 0;
    const sub = c.add({
      onFrame: () => {
        times.push(Date.now());
        if (++n % 5 === 0) sub.shift(-6); // a sender whose frames come ever earlier: 6 ms more every 5 frames
      },
    });
    vi.advanceTimersByTime(20 * 200);
    sub.remove();
    const grid = times[0]!;
    // frame k, whose RTP timestamp is k·160 on, goes within half a frame of grid + k·20: no drift, however many moves
    const offsets = times.map((t, k) => t - (grid + k * 20));
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(-10);
    expect(Math.max(...offsets)).toBeLessThan(10);
    // it did move: 40 asks, each taken as 6 ms earlier, or 14 ms later where that would pass half a frame
    expect(new Set(times.slice(1).map((t, i) => t - times[i]!))).toEqual(new Set([20, 14, 34]));
  });

  it('keeps the other sinks of both slots on their grid while one moves between them', () => {
    const c = clock();
    const a = recorder();
    const b = recorder();
    c.add(a); // slot 0
    c.add(b); // slot 1
    let n = 0;
    const mover = c.add({ onFrame: () => void (++n === 2 && mover.shift(-2)) }); // slot 2, moves to slot 1
    vi.advanceTimersByTime(20 * 20);
    for (const s of [a, b]) expect(new Set(s.times.slice(1).map((t, i) => t - s.times[i]!))).toEqual(new Set([20]));
    expect(n).toBeGreaterThanOrEqual(19);
    expect(c.stats.lateness.maxMs).toBe(0);
  });

  it('ignores a shift before the first frame and after remove()', () => {
    const c = clock();
    const s = recorder();
    const sub = c.add(s);
    sub.shift(-10);
    vi.advanceTimersByTime(20 * 4);
    sub.remove();
    sub.shift(4);
    expect(c.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(new Set(s.times.slice(1).map((t, i) => t - s.times[i]!))).toEqual(new Set([20]));
  });

  it('rejects nonsense options', () => {
    expect(() => new MediaClock({ frameMs: 0 })).toThrow(RangeError);
    expect(() => new MediaClock({ slots: 2.5 })).toThrow(RangeError);
  });
});

describe('MediaClock (real time)', () => {
  it('delivers ~50 frames a second to each sink on the real event loop', async () => {
    const c = new MediaClock();
    const counts = [0, 0, 0];
    const removes = counts.map((_, i) => c.add({ onFrame: () => void counts[i]!++ }));
    await new Promise((r) => setTimeout(r, 520));
    for (const r of removes) r.remove();
    // first frame after ~20-40 ms, so 500 ms of frames: loose bounds, the machine may be busy
    for (const n of counts) {
      expect(n).toBeGreaterThanOrEqual(20);
      expect(n).toBeLessThanOrEqual(26);
    }
    expect(c.size).toBe(0);
  });

  it('after the event loop was held up, lets the I/O that waited run before the late frames', async () => {
    const c = new MediaClock();
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    let received = false;
    socket.on('message', () => (received = true));
    const seen: boolean[] = [];
    const sub = c.add({ onFrame: () => void seen.push(received) });
    await new Promise((r) => setTimeout(r, 60));
    const before = seen.length;
    socket.send(Buffer.from('caller audio'), socket.address().port, '127.0.0.1');
    await new Promise((r) => process.nextTick(r)); // dgram's address lookup, then the datagram is on its way
    const until = performance.now() + 45;
    while (performance.now() < until); // held up past two frames, the datagram waiting in the kernel
    await new Promise((r) => setTimeout(r, 30));
    sub.remove();
    socket.close();
    // the first frame after the stall saw the datagram that had come during it
    expect(seen.length).toBeGreaterThan(before);
    expect(seen[before]).toBe(true);
  });
});
