import { describe, expect, it } from 'vitest';
import { PlayoutBuffer } from '../../../media/playout.js';
import { isSilentFrame } from '../../../media/silence.js';

/** Distinct, loud bytes so any reordering or loss shows. */
function ramp(n: number, start = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) % 100);
}

/**
 * Caller frame `k`, 160 bytes that say which frame they are: speech is loud (0x10 decodes to about −6 dBov) with k in
 * its first two bytes; silence is 0xFF (zero) with k + 1 written in its first 16 bytes as 0xFE (±8 of 32767) for a
 * one bit, still silence by isSilentFrame. A frame of pure 0xFF is silence the buffer made.
 */
function frame(k: number, speech: boolean): Uint8Array {
  const f = new Uint8Array(160).fill(speech ? 0x10 : 0xff);
  if (speech) {
    f[0] = k >> 8;
    f[1] = k & 0xff;
  } else {
    for (let bit = 0; bit < 16; bit++) if (((k + 1) >> bit) & 1) f[bit] = 0xfe;
  }
  return f;
}

/** Which caller frame `f` is, and whether it held speech; -1 for silence the buffer made. */
function which(f: Uint8Array): { k: number; speech: boolean } {
  if (f[2] === 0x10) return { k: (f[0]! << 8) | f[1]!, speech: true };
  let id = 0;
  for (let bit = 0; bit < 16; bit++) if (f[bit] === 0xfe) id |= 1 << bit;
  return { k: id - 1, speech: false };
}

interface Sent {
  /** the caller frame sent, or -1 for silence the buffer made */
  k: number;
  at: number;
}

/**
 * A caller whose frame `k` (speech or not by `speech(k)`) is pushed at `pushAt(k)` (in order: TCP), pulled every 20 ms
 * from `firstPull` on, moved by the shifts the buffer asks for after a pull or a push as the media clock moves them
 * (RtpSession reads both): the next pull comes 20 ms + the shift after the last, in whole 2 ms steps (toward zero
 * when earlier, away when later), never in the past. `pushAt` of a frame may be the same as others' (a burst).
 */
function run(opts: {
  pushAt: (k: number) => number;
  speech?: (k: number) => boolean;
  /** how long the gateway itself held frame k up before its push (RtpSession passes the clock's behindMs) */
  heldUpMs?: (k: number) => number;
  firstPull: number;
  pulls: number;
  frames?: number;
  maxMs?: number;
}) {
  let t = 0;
  let heldUpMs = 0;
  const b = new PlayoutBuffer({ windowFrames: 50, now: () => t, maxMs: opts.maxMs, heldUpMs: () => heldUpMs });
  const speech = opts.speech ?? (() => true);
  const frames = opts.frames ?? opts.pulls;
  const sent: Sent[] = [];
  const shifts: number[] = [];
  let lastPullAt = opts.firstPull - 20;
  let pullAt = opts.firstPull;
  // as MediaClock.shift does: whole 2 ms steps, the call kept within half a frame of its first grid (a move past
  // that goes the other way round, a frame shorter or longer); never into a step the clock has run, and one due while
  // the gateway held it up runs late, when it lets go (now)
  let offsetSteps = 0;
  const move = (shift: number, heldUpMs = 0): void => {
    let steps = Math.max(-9, Math.min(9, shift > 0 ? Math.ceil(shift / 2) : Math.trunc(shift / 2)));
    if (offsetSteps + steps < -5) steps += 10;
    else if (offsetSteps + steps >= 5) steps -= 10;
    offsetSteps += steps;
    pullAt = lastPullAt + 20 + 2 * steps;
    while (pullAt < t - heldUpMs) pullAt += 20;
    if (shift !== 0) b.pullsMoved(shift, pullAt - (lastPullAt + 20));
  };
  let next = 0;
  for (let p = 0; p < opts.pulls; p++) {
    for (; next < frames && opts.pushAt(next) <= pullAt; next++) {
      t = opts.pushAt(next);
      heldUpMs = opts.heldUpMs?.(next) ?? 0;
      b.push(frame(next, speech(next)));
      const shift = b.takePhaseShift();
      if (shift !== 0) {
        shifts.push(shift);
        move(shift, heldUpMs);
      }
    }
    t = Math.max(t, pullAt);
    const f = b.pull();
    sent.push({ k: f.every((x) => x === 0xff) ? -1 : which(f).k, at: t });
    lastPullAt = pullAt;
    const shift = b.takePhaseShift();
    shifts.push(shift);
    move(shift);
  }
  /** the caller frames the bot heard, in the order it heard them */
  const heard = sent.filter((s) => s.k >= 0).map((s) => s.k);
  /** how long each caller frame waited from its push to its pull */
  const waited = new Map(sent.filter((s) => s.k >= 0).map((s) => [s.k, s.at - opts.pushAt(s.k)]));
  return { b, sent, heard, shifts, waited };
}

/** Every speech frame of 0 … n-1 heard exactly once and in order, and nothing else but silent frames among them. */
function expectEverySpeechFrameOnce(heard: number[], n: number, speech: (k: number) => boolean): void {
  expect(heard).toEqual([...heard].sort((a, b) => a - b));
  expect(new Set(heard).size).toBe(heard.length);
  const speechHeard = heard.filter((k) => speech(k));
  const speechSent = Array.from({ length: n }, (_, k) => k).filter(speech);
  expect(speechHeard).toEqual(speechSent);
}

/** Talk 1.4 s, pause 0.6 s: a caller who says something and waits, again and again. */
const talkAndPause = (k: number): boolean => k % 100 < 70;

describe('PlayoutBuffer', () => {
  it('frame() makes speech and silence the buffer tells apart, and which() reads back', () => {
    for (const k of [0, 1, 255, 4000]) {
      expect(isSilentFrame(frame(k, true))).toBe(false);
      expect(isSilentFrame(frame(k, false))).toBe(true);
      expect(which(frame(k, true))).toEqual({ k, speech: true });
      expect(which(frame(k, false))).toEqual({ k, speech: false });
    }
  });

  it('splits 40 ms chunks into 160-byte frames, bit-exact', () => {
    const b = new PlayoutBuffer();
    const audio = ramp(320 * 3);
    for (let i = 0; i < 3; i++) b.push(audio.subarray(i * 320, (i + 1) * 320));
    const frames = Array.from({ length: 6 }, () => b.pull());
    expect(frames.every((f) => f.length === 160)).toBe(true);
    expect(Buffer.concat(frames).equals(Buffer.from(audio))).toBe(true);
    expect(b.stats).toMatchObject({ framesOut: 6, silenceInsertedFrames: 0, speechLostFrames: 0, maxDepthBytes: 960 });
  });

  it('joins 7-byte chunks into 160-byte frames, bit-exact across ring wrap-around', () => {
    const b = new PlayoutBuffer({ maxMs: 100 }); // an 800-byte ring, wrapped many times below
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
    expect(b.stats.speechLostFrames).toBe(0);
  });

  it('returns a new Buffer per frame, so a frame still queued in dgram is never overwritten', () => {
    const b = new PlayoutBuffer();
    b.push(ramp(320));
    const first = b.pull();
    const copy = Buffer.from(first);
    b.pull();
    expect(first.equals(copy)).toBe(true);
  });

  it('writes a frame into a packet at an offset with pullInto', () => {
    const b = new PlayoutBuffer();
    b.push(ramp(160, 9));
    const pkt = Buffer.alloc(172, 0xaa);
    b.pullInto(pkt, 12);
    expect(pkt.subarray(0, 12).every((x) => x === 0xaa)).toBe(true);
    expect(pkt.subarray(12).equals(Buffer.from(ramp(160, 9)))).toBe(true);
  });

  it('sends silence when empty, and keeps a partial frame whole until its rest comes', () => {
    let t = 0;
    const b = new PlayoutBuffer({ now: () => t });
    expect(b.pull().every((x) => x === 0xff)).toBe(true);
    const audio = ramp(320, 1);
    b.push(audio.subarray(0, 100));
    t = 20;
    expect(b.pull().every((x) => x === 0xff)).toBe(true); // not 100 bytes and 60 of silence inside the frame
    b.push(audio.subarray(100));
    t = 40;
    expect(b.pull().equals(Buffer.from(audio.subarray(0, 160)))).toBe(true);
    expect(b.pull().equals(Buffer.from(audio.subarray(160)))).toBe(true);
    expect(b.stats).toMatchObject({ framesOut: 4, silenceInsertedFrames: 2 });
  });

  it('pads and sends a partial frame once no audio has come for two frames: the sender stopped mid-frame', () => {
    let t = 0;
    const b = new PlayoutBuffer({ now: () => t });
    b.push(ramp(100, 1));
    t = 39;
    expect(b.pull().every((x) => x === 0xff)).toBe(true);
    t = 40;
    const last = b.pull();
    expect(last.subarray(0, 100).equals(Buffer.from(ramp(100, 1)))).toBe(true);
    expect(last.subarray(100).every((x) => x === 0xff)).toBe(true);
    expect(b.depthBytes).toBe(0);
  });

  it('plays a frame that missed its pull at the next one instead of dropping it, and keeps a frame back from then on', () => {
    // frame 2 comes 5 ms after its pull: silence goes in its place, and it plays 20 ms late, as do the ones after it
    const { b, sent, heard } = run({ pushAt: (k) => 20 * k + (k === 2 ? 15 : 0), firstPull: 10, pulls: 12 });
    expect(sent.map((s) => s.k)).toEqual([0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expectEverySpeechFrameOnce(heard, 11, () => true);
    expect(b.stats).toMatchObject({ underruns: 1, silenceInsertedFrames: 1, speechLostFrames: 0, silenceRemovedFrames: 0 });
  });

  it('after a first small lateness plays the late frame at once and moves the pulls later by as much, for 10 s', () => {
    // pulls 4 ms after each arrival; frame 200 comes 14 ms late, 10 ms after its pull
    const { b, waited, sent } = run({ pushAt: (k) => 20 * k + (k === 200 ? 14 : 0), speech: talkAndPause, firstPull: 4, pulls: 2000 });
    expect(waited.get(199)).toBe(4);
    // the next pull comes as it did instead of a frame after the one it missed: no frame left standing
    expect(waited.get(200)).toBe(0);
    expect(sent.find((x) => x.k === 200)!.at - sent.find((x) => x.k === 199)!.at).toBe(20 + 10);
    expect(waited.get(250)).toBe(4 + 10); // the pulls stay 10 ms later, the margin still before them
    expect(waited.get(650)).toBe(4 + 10); // the room for that lateness is kept
    expect(waited.get(1990)).toBe(4); // 10 s later, tightened back to the margin
    // that move would take the call more than half a frame off its first grid: the clock makes it the other way
    // round, a frame later, and the frame that leaves standing goes at the next pause (pullsMoved)
    expect(b.stats).toMatchObject({ underruns: 1, silenceInsertedFrames: 1, speechLostFrames: 0, silenceRemovedFrames: 1 });
  });

  it('after a second small lateness, seconds later, moves the pulls on within the frame instead of adding one', () => {
    // 8 ms late at 4 s (4 after its pull: the pulls move to 8 ms after the frames), then 14 ms late at 8 s (6 after)
    const lateMs = (k: number): number => (k === 200 ? 8 : k === 400 ? 14 : 0);
    const { b, waited } = run({ pushAt: (k) => 20 * k + lateMs(k), speech: talkAndPause, firstPull: 4, pulls: 1200 });
    expect(waited.get(300)).toBe(8);
    expect(waited.get(550)).toBe(14); // as the later one came: 14 ms, not 20 more
    expect(waited.get(850)).toBe(14); // and kept, for as long as the later one is remembered
    expect(waited.get(1190)).toBe(4);
    expect(b.stats).toMatchObject({ underruns: 2, speechLostFrames: 0 });
  });

  it('keeps the room twice as long for a sender late again soon after the room was given up', () => {
    // 14 ms late at 4 s and at 20 s (10 after their pulls): the second comes 6 s after the first's 10 s lapsed
    const lateMs = (k: number): number => (k === 200 || k === 1000 ? 14 : 0);
    const { waited } = run({ pushAt: (k) => 20 * k + lateMs(k), speech: talkAndPause, firstPull: 4, pulls: 2600 });
    expect(waited.get(950)).toBe(4); // the first's room given up after 10 s
    expect(waited.get(1950)).toBe(4 + 10); // the second's kept 20 s: still at 39 s
    expect(waited.get(2590)).toBe(4);
  });

  it('after a second lateness within 30 s keeps a frame of cushion, and lets it go once 10 s pass without need', () => {
    // 10 ms late at 4 s (the pulls move 10 ms later), then 20 ms late at 12 s: 6 ms after its pull again
    const lateMs = (k: number): number => (k === 200 ? 10 : k === 600 ? 20 : 0);
    const { b, waited } = run({ pushAt: (k) => 20 * k + lateMs(k), speech: talkAndPause, firstPull: 4, pulls: 3000 });
    expect(waited.get(650)).toBeGreaterThanOrEqual(20 + 4);
    expect(waited.get(750)).toBeGreaterThanOrEqual(20 + 4); // past the pause: the cushion frame stays
    expect(waited.get(2990)).toBeLessThan(20); // it went once the sender was steady for long enough
    expect(b.stats).toMatchObject({ underruns: 2, speechLostFrames: 0 });
  });

  it('grows no cushion and keeps no memory for lateness the gateway itself caused (its clock was held up as long)', () => {
    // the schedule of the test above, but each late frame sat in our socket while our event loop was held up
    const lateMs = (k: number): number => (k === 200 ? 10 : k === 600 ? 20 : 0);
    const { b, waited } = run({ pushAt: (k) => 20 * k + lateMs(k), heldUpMs: lateMs, speech: talkAndPause, firstPull: 4, pulls: 3000 });
    expect(b.stats).toMatchObject({ underruns: 2, speechLostFrames: 0 });
    // each stall leaves a frame standing until a pause takes it back; no cushion keeps it (with one, as in the test
    // above, frame 750 waits 20 ms more)
    expect(waited.get(650)).toBe(20 + 4);
    expect(waited.get(750)).toBeLessThan(20);
    expect(waited.get(2990)).toBeLessThan(20);
  });

  it('counts as the sender\'s only the lateness beyond what the gateway held the frame up', () => {
    // 24 ms late, 20 after its pull (which comes the margin after the frames): as the sender's, that would leave the
    // pulls a frame later; with 10 of them ours, they move 10 ms later, as for audio 10 ms after its pull
    const { b, waited } = run({
      pushAt: (k) => 20 * k + (k === 200 ? 24 : 0),
      heldUpMs: (k) => (k === 200 ? 10 : 0),
      speech: talkAndPause,
      firstPull: 4,
      pulls: 400,
    });
    expect(waited.get(200)).toBe(0); // its pull, due while the gateway held it up, goes as it lets go
    expect(waited.get(250)).toBe(4 + 10);
    expect(waited.get(390)).toBe(4 + 10);
    expect(b.stats).toMatchObject({ underruns: 1, phaseShifts: 1, silenceRemovedFrames: 0 });
  });

  it('does not count the pulls before the caller\'s first frame, nor those of a pause, as underruns', () => {
    let t = 0;
    const b = new PlayoutBuffer({ now: () => t });
    b.pull();
    b.pull();
    b.push(ramp(160, 1));
    b.pull();
    b.pull();
    b.pull();
    b.push(ramp(160, 2));
    expect(b.pull().equals(Buffer.from(ramp(160, 2)))).toBe(true);
    expect(b.stats).toMatchObject({ underruns: 1, silenceInsertedFrames: 4 });
  });

  it('hears every frame of a perfectly paced sender exactly once, whatever its phase against the pulls', () => {
    // issue 12: one perfectly paced call in six lost 50 frames in a row, trimmed and moved earlier in the same window
    for (let phase = 0; phase < 20; phase += 0.5) {
      const { b, heard, waited } = run({ pushAt: (k) => 20 * k + phase, speech: talkAndPause, firstPull: 3, pulls: 1500 });
      expectEverySpeechFrameOnce(heard, heard[heard.length - 1]! + 1, talkAndPause);
      expect(b.stats, `phase ${phase}`).toMatchObject({ speechLostFrames: 0, underruns: 0 });
      expect(Math.max(...[...waited].filter(([k]) => k > 100).map(([, w]) => w)), `phase ${phase}`).toBeLessThanOrEqual(8);
    }
  });

  it('after a burst, takes the delay back only by leaving out silent frames, and loses no speech', () => {
    // 500 ms held back at 2 s (TCP head-of-line blocking), then sent at once; talk 1.4 s, pause 0.6 s
    const pushAt = (k: number): number => (k >= 100 && k < 125 ? 125 * 20 : 20 * k);
    const { b, heard, waited } = run({ pushAt, speech: talkAndPause, firstPull: 4, pulls: 1000, frames: 1000 });
    expectEverySpeechFrameOnce(heard, heard[heard.length - 1]! + 1, talkAndPause);
    expect(b.stats.speechLostFrames).toBe(0);
    expect(b.stats.silenceRemovedFrames).toBeGreaterThanOrEqual(23);
    // only silence was left out: every speech frame up to the last heard reached the bot
    const steady = waited.get(50)!;
    expect(steady).toBeLessThanOrEqual(4);
    // the frames after the burst wait up to 500 ms more; 10 s later, within 40 ms of before (the cushion it left)
    expect(Math.max(...[...waited.values()])).toBeGreaterThan(400);
    for (const [k, w] of waited) if (k >= 125 + 500) expect(w, `frame ${k}`).toBeLessThanOrEqual(steady + 40);
  });

  it('stretches pauses, never words, for a sender 6 % slow with 40 ms frames', () => {
    // the public Talkdesk simulator: 320 bytes every 40 ms / 0.94
    const pushAt = (k: number): number => Math.floor(k / 2) * (40 / 0.94);
    const { b, sent, heard } = run({ pushAt, speech: talkAndPause, firstPull: 3, pulls: 9000, frames: 8400 });
    expectEverySpeechFrameOnce(heard, heard[heard.length - 1]! + 1, talkAndPause);
    // silence inside a word: a pull that sent the buffer's silence between two speech frames of one talk
    const gapsInWords = sent.filter((s, i) => {
      if (s.k >= 0 || i === 0) return false;
      const before = sent.slice(0, i).reverse().find((x) => x.k >= 0)?.k;
      const after = sent.slice(i + 1).find((x) => x.k >= 0)?.k;
      return before !== undefined && after !== undefined && talkAndPause(before) && talkAndPause(after) && after === before + 1;
    });
    // a word is cut while the buffer learns how slow the sender is (its first two talks: the pulls move within the
    // frame twice, then the cushion grows), then only when a shrink of the cushion proves premature, each such time
    // doubling how long the next one waits: once in 3 minutes here
    const afterLearning = gapsInWords.filter((s) => s.at > 4000);
    expect(gapsInWords.length - afterLearning.length).toBeLessThanOrEqual(6);
    expect(afterLearning.length).toBeLessThanOrEqual(2);
    expect(b.stats).toMatchObject({ speechLostFrames: 0 });
    expect(b.stats.silenceInsertedFrames).toBeGreaterThan(0.06 * 9000 * 0.9); // the 6 % the sender is short
  });

  it('counts as its deepest only audio a pull found waiting: a backlog cleared unsent (the call ended) is no delay', () => {
    let t = 0;
    const b = new PlayoutBuffer({ now: () => t });
    b.push(frame(0, true));
    t = 4;
    b.pull();
    t = 20;
    b.push(frame(1, true));
    b.push(frame(2, true)); // a burst: two frames for the next pull
    t = 24;
    b.pull();
    expect(b.stats).toMatchObject({ maxDepthBytes: 320, maxDepthAt: 24 });
    for (let k = 3; k < 8; k++) b.push(frame(k, true)); // the caller's last 100 ms, read before the BYE behind it
    b.clear();
    expect(b.stats).toMatchObject({ maxDepthBytes: 320, maxDepthAt: 24 });
  });

  it('shortens pauses for a sender 2 % fast, and its delay stays bounded', () => {
    const pushAt = (k: number): number => (k * 20) / 1.02;
    const { b, heard, waited } = run({ pushAt, speech: talkAndPause, firstPull: 3, pulls: 3000, frames: 3060 });
    expectEverySpeechFrameOnce(heard, heard[heard.length - 1]! + 1, talkAndPause);
    expect(b.stats.speechLostFrames).toBe(0);
    expect(b.stats.silenceRemovedFrames).toBeGreaterThanOrEqual(55);
    const late = [...waited.entries()].filter(([k]) => k > 2500).map(([, w]) => w);
    expect(Math.max(...late)).toBeLessThan(200);
  });

  it('rides out a 500 ms stall every 4 s for ten minutes without losing speech, its delay well under the cap', () => {
    // each stall may grow the cushion, and its backlog goes only in silence: neither may build up toward the cap
    const stalled = (k: number): boolean => k >= 100 && (k - 100) % 200 < 25;
    const pushAt = (k: number): number => (stalled(k) ? (k - ((k - 100) % 200) + 25) * 20 : 20 * k);
    const { b, heard } = run({ pushAt, speech: talkAndPause, firstPull: 4, pulls: 30_000 });
    expectEverySpeechFrameOnce(heard, heard[heard.length - 1]! + 1, talkAndPause);
    expect(b.stats.speechLostFrames).toBe(0);
    expect(b.stats.maxDepthBytes).toBeLessThan(8 * 900);
  });

  it('never removes speech to take delay back: a caller who never pauses keeps the delay a burst gave', () => {
    const pushAt = (k: number): number => (k >= 100 && k < 110 ? 110 * 20 : 20 * k);
    const { b, heard, waited } = run({ pushAt, firstPull: 4, pulls: 800 });
    expectEverySpeechFrameOnce(heard, heard[heard.length - 1]! + 1, () => true);
    expect(b.stats.silenceRemovedFrames).toBe(0);
    expect(waited.get(700)).toBeGreaterThan(190);
  });

  it('past its cap drops the oldest whole frames, counting speech lost apart from silence', () => {
    const b = new PlayoutBuffer({ maxMs: 100 }); // 5 frames
    for (let k = 0; k < 7; k++) b.push(frame(k, k !== 1)); // frames 0 (speech) and 1 (silence) go
    expect(b.depthBytes).toBe(800);
    expect(b.stats).toMatchObject({ speechLostFrames: 1, silenceRemovedFrames: 1 });
    expect(Array.from({ length: 5 }, () => which(b.pull()).k)).toEqual([2, 3, 4, 5, 6]);

    const big = new Uint8Array(160 * 8);
    for (let k = 0; k < 8; k++) big.set(frame(10 + k, true), k * 160);
    b.push(big); // one chunk larger than the whole buffer: only its newest 5 frames stay
    expect(b.stats.speechLostFrames).toBe(1 + 3);
    expect(Array.from({ length: 5 }, () => which(b.pull()).k)).toEqual([13, 14, 15, 16, 17]);
    expect(b.stats.maxDepthBytes).toBe(800);
  });

  it('asks for the pulls to come earlier, to 4 ms after the arrivals, after the first window', () => {
    const { shifts, sent } = run({ pushAt: (k) => 20 * k, firstPull: 15, pulls: 60 });
    expect(shifts.flatMap((x, i) => (x === 0 ? [] : [[i, x]]))).toEqual([[49, -11]]);
    // the clock moves in whole 2 ms steps, toward zero when earlier: 10 ms, to 5 ms after the arrivals
    expect(sent[50]!.at - 20 * sent[50]!.k).toBe(5);
  });

  it('decides each of a call\'s first 5 windows on its own, so a first window spoiled by call setup costs 1 s, not 5', () => {
    // the first second jittery (frame 20 came 10 ms late: it waited 5 ms), steady from then on, 15 ms before the pulls
    const { shifts, waited } = run({ pushAt: (k) => 20 * k + (k === 20 ? 10 : 0), firstPull: 15, pulls: 200 });
    expect(shifts.flatMap((x, i) => (x === 0 ? [] : [[i, x]]))).toEqual([[99, -11]]);
    expect(waited.get(120)).toBe(5);
  });

  it('leaves a phase within twice the margin alone', () => {
    const { shifts, b } = run({ pushAt: (k) => 20 * k, firstPull: 8, pulls: 300 });
    expect(shifts.every((x) => x === 0)).toBe(true);
    expect(b.stats.phaseShifts).toBe(0);
  });

  it('moves the phase within a frame only: a standing frame is taken back in silence, not by the clock', () => {
    // a frame too many from the start, arrivals 15 ms before the pulls: each frame waits 35 ms
    const pushAt = (k: number): number => (k < 2 ? 0 : 20 * (k - 1));
    const { shifts, waited, b } = run({ pushAt, speech: talkAndPause, firstPull: 15, pulls: 600 });
    expect(shifts.filter((x) => x !== 0).every((x) => x > -20)).toBe(true);
    expect(shifts.find((x) => x !== 0)).toBe(-11);
    expect(b.stats.silenceRemovedFrames).toBe(1);
    expect(waited.get(590)).toBe(5); // the margin, to the clock's 2 ms step
  });

  it('clear() empties it and forgets the window, counting nothing', () => {
    let t = 0;
    const b = new PlayoutBuffer({ windowFrames: 5, now: () => t });
    b.push(ramp(800));
    for (let k = 0; k < 4; k++) {
      t += 20;
      b.pull();
    }
    b.clear();
    expect(b.depthBytes).toBe(0);
    t += 20;
    expect(b.pull().every((x) => x === 0xff)).toBe(true);
    expect(b.takePhaseShift()).toBe(0);
    expect(b.stats).toMatchObject({ speechLostFrames: 0, silenceRemovedFrames: 0, underruns: 0 });
  });

  it('rejects a maxMs smaller than one frame', () => {
    expect(() => new PlayoutBuffer({ maxMs: 10 })).toThrow(RangeError);
  });
});
