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

  describe('adapting its delay (fake time, 5-pull windows)', () => {
    /**
     * A caller sending one 160-byte frame `k` at `pushAt(k)`, pulled every 20 ms from `firstPull` on, each pull moved
     * by the shift the buffer asked for after the one before, as the media clock would.
     */
    function run(opts: { pushAt: (k: number) => number; firstPull: number; frames: number }) {
      let t = 0;
      const b = new PlayoutBuffer({ windowFrames: 5, now: () => t });
      const pushes = Array.from({ length: opts.frames }, (_, k) => [opts.pushAt(k), k] as const).sort((x, y) => x[0] - y[0]);
      const sent: number[] = [];
      const shifts: number[] = [];
      const pulls: number[] = [];
      let pullAt = opts.firstPull;
      let next = 0;
      for (let k = 0; k < opts.frames; k++) {
        for (; next < pushes.length && pushes[next]![0] <= pullAt; next++) {
          t = pushes[next]![0];
          b.push(new Uint8Array(160).fill(pushes[next]![1] % 100));
        }
        t = pullAt;
        pulls.push(pullAt);
        const f = b.pull();
        // frame k is filled with k % 100: unwrapped, since frames only go forward
        const k100 = f.every((x) => x === 0xff) ? -1 : f[0]!;
        const last = Math.max(0, ...sent.slice(-1));
        sent.push(k100 < 0 ? -1 : last + ((k100 - (last % 100) + 100) % 100));
        const shift = b.takePhaseShift();
        shifts.push(shift);
        pullAt += 20 + shift;
      }
      return { b, sent, shifts, pulls };
    }

    it('drops a surplus that a whole window never needed, and only then', () => {
      // a burst of 3 frames at the start: two of them are surplus, delay 40 ms for good unless trimmed
      const { b, sent } = run({ pushAt: (k) => (k < 3 ? 0 : 20 * (k - 2)), firstPull: 4, frames: 15 });
      expect(b.stats.trimmedBytes).toBe(320);
      // pulls 0-4 send frames 0-4 (40 ms late); the trim after pull 4 drops frames 5 and 6; pull 5 sends frame 7
      expect(sent).toEqual([0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14, -1, -1]);
    });

    it('discards a frame that missed its pull instead of playing it a frame late, and trims nothing for it', () => {
      // frame 2 comes 5 ms after its pull, which sent silence instead: played after it, everything would be 20 ms later
      const { b, sent } = run({ pushAt: (k) => 20 * k + (k === 2 ? 15 : 0), firstPull: 10, frames: 12 });
      expect(sent).toEqual([0, 1, -1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(b.stats).toMatchObject({ silenceFrames: 1, lateBytes: 160, trimmedBytes: 0 });
    });

    it('plays the rest of a late frame that arrived in part before its pull', () => {
      let t = 0;
      const b = new PlayoutBuffer({ windowFrames: 50, now: () => t });
      b.push(ramp(160, 1));
      t = 5;
      b.pull();
      b.push(ramp(100, 2)); // 100 of the next frame's bytes
      t = 25;
      const partial = b.pull(); // 60 short: padded
      expect(partial.subarray(0, 100).equals(Buffer.from(ramp(100, 2)))).toBe(true);
      t = 27;
      b.push(ramp(220, 3)); // its last 60 bytes, late, then the next whole frame
      t = 45;
      expect(b.pull().equals(Buffer.from(ramp(220, 3).subarray(60)))).toBe(true);
      expect(b.stats.lateBytes).toBe(60);
    });

    it('does not discard audio after a pause: two pulls or more without any is the caller pausing', () => {
      let t = 0;
      const b = new PlayoutBuffer({ windowFrames: 50, now: () => t });
      b.push(ramp(160, 1));
      b.pull();
      b.pull();
      b.pull();
      b.push(ramp(160, 2));
      expect(b.pull().equals(Buffer.from(ramp(160, 2)))).toBe(true);
      expect(b.stats.lateBytes).toBe(0);
    });

    it('asks for the pulls to come earlier, to 4 ms after the latest arrival, once a window', () => {
      const { shifts, pulls } = run({ pushAt: (k) => 20 * k, firstPull: 15, frames: 15 });
      expect(shifts).toEqual([0, 0, 0, 0, -11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      expect(pulls.slice(4, 7)).toEqual([95, 104, 124]);
    });

    it('leaves a phase within twice the margin alone', () => {
      const { shifts, b } = run({ pushAt: (k) => 20 * k, firstPull: 8, frames: 20 });
      expect(shifts.every((x) => x === 0)).toBe(true);
      expect(b.stats.phaseShifts).toBe(0);
    });

    it('after a late frame asks for later pulls at once, then tightens slowly, keeping room for it for 30 windows', () => {
      // pulls 3 ms after each arrival; frame 2 comes 5 ms after its pull, then every frame 6 ms earlier than before
      const pushAt = (k: number): number => (k === 2 ? 48 : 20 * k - (k > 2 ? 6 : 0));
      const { shifts, sent, pulls, b } = run({ pushAt, firstPull: 3, frames: 200 });
      const slack = (i: number): number => pulls[i]! - pushAt(sent[i]!);
      expect(sent.slice(0, 5)).toEqual([0, 1, -1, 3, 4]);
      // later by the 5 ms plus the margin: each frame now waits 3 - 6 + 9 + 20 = 18 ms (the one before's pull). Pulled
      // earlier in the 5th window after the late one, leaving the margin plus those 5 ms; 30 windows on, the margin
      expect(shifts.flatMap((x, i) => (x === 0 ? [] : [[i, x]]))).toEqual([
        [4, 5 + 4],
        [4 + 5 * 5, 4 + 5 - 18],
        [4 + 30 * 5, 4 - 9],
      ]);
      expect([slack(5), slack(29), slack(30), slack(154), slack(155), slack(199)]).toEqual([18, 18, 9, 9, 4, 4]);
      expect(b.stats).toMatchObject({ phaseShifts: 3, silenceFrames: 1, lateBytes: 160, trimmedBytes: 0 });
    });

    it('takes up a standing frame that jitter keeps from being trimmed by pulling earlier, dropping nothing', () => {
      // a frame of surplus from the start, and one frame a window (5 pulls here) 3 ms late: the pull it misses takes
      // the surplus frame instead, so the buffer is empty once a window and nothing can be trimmed. Frames wait 21 ms.
      const pushAt = (k: number): number => (k < 2 ? 0 : 20 * (k - 1) + (k % 5 === 3 ? 3 : 0));
      const { shifts, sent, pulls, b } = run({ pushAt, firstPull: 1, frames: 300 });
      expect(b.stats).toMatchObject({ trimmedBytes: 0, lateBytes: 0, silenceFrames: 0 });
      expect(sent).toEqual(sent.map((_, i) => i));
      // the late frames waited 18 ms, the least: moved 14 earlier, to the margin after them
      expect(shifts.flatMap((x, i) => (x === 0 ? [] : [[i, x]]))).toEqual([[4 + 5 * 5, 4 - 18]]);
      const waits = pulls.map((t, i) => t - pushAt(sent[i]!));
      expect(Math.max(...waits.slice(0, 5))).toBe(21);
      expect(Math.max(...waits.slice(-50))).toBeLessThanOrEqual(4 + 4 + 3);
    });

    it('does not take the first pulls, before the caller\'s audio has reached one, for late frames', () => {
      // the clock's first pull comes before the caller's first frame: no frame was late, the stream had not started
      const { shifts } = run({ pushAt: (k) => 20 * k + 15, firstPull: 5, frames: 12 });
      // each frame then waits 10 ms for its pull: moved 6 earlier, to the margin
      expect(shifts.slice(0, 5)).toEqual([0, 0, 0, 0, -6]);
    });

    it('does not take 40 ms frames, one pull in two without a push, for late frames', () => {
      let t = 0;
      const b = new PlayoutBuffer({ windowFrames: 5, now: () => t });
      const shifts: number[] = [];
      for (let k = 0; k < 20; k++) {
        if (k % 2 === 0) {
          t = 20 * k;
          b.push(ramp(320));
        }
        t = 20 * k + 3;
        b.pull();
        shifts.push(b.takePhaseShift());
      }
      expect(b.stats.silenceFrames).toBe(0);
      expect(shifts.every((x) => x <= 0)).toBe(true);
    });

    it('clear() forgets the window', () => {
      let t = 0;
      const b = new PlayoutBuffer({ windowFrames: 5, now: () => t });
      b.push(ramp(480));
      for (let k = 0; k < 4; k++) {
        t += 20;
        b.pull();
      }
      b.clear();
      t += 20;
      b.pull(); // would have closed a window with 160 bytes never needed
      expect(b.stats.trimmedBytes).toBe(0);
      expect(b.takePhaseShift()).toBe(0);
    });
  });
});
