import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { pino } from 'pino';
import { serialize } from 'rtp-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MediaClock } from '../../../media/clock.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { RtpSession } from '../../../media/rtp-session.js';

// The bot's RTP arriving in bursts and out of order (a jitter buffer flushing, a network path reordering): every
// packet is handed on as it arrives (RtpSession does not reorder), nothing throws, and the counters agree with one
// another and with the order the packets actually came in:
//   sequenceGaps  a packet whose sequence number is not the previous packet's + 1 (same SSRC)
//   packetsLate   a packet behind the highest sequence number seen (RFC 3550 A.1), reordered or duplicated
//   packetsLost   expected (highest - first + 1) minus received: 0 when every packet arrives, in whatever order
// Ports 44800-44899: no other test uses them.

const SSRC = 0x0b0b0b0b;
const FRAME = 160;

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup() {
  const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44800, max: 44899 });
  const clock = new MediaClock();
  const logLines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  /** the sequence number each delivered payload carries, in delivery order */
  const delivered: number[] = [];
  const session = await RtpSession.open({ pool, clock, log, delegate: { onAudio: (p) => void delivered.push(p.readUInt16BE(0)) } });
  const bot: Socket = createSocket('udp4');
  bot.bind(0, '127.0.0.1');
  await once(bot, 'listening');
  const botPort = bot.address().port;
  let botReceived = 0;
  bot.on('message', () => botReceived++);
  cleanup.push(
    () => session.close(),
    () => new Promise<void>((r) => bot.close(() => r())),
  );
  session.start({ address: '127.0.0.1', port: botPort, audioPayloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv' });
  return { session, bot, delivered, logLines, botReceived: () => botReceived };
}

/**
 * The PCMU packet of frame `n` of the bot's stream: sequence number n mod 2^16, timestamp n × 160 (a reordered
 * packet keeps its own), and a payload that starts with its sequence number so the delegate can tell which it got.
 */
function packet(n: number): Buffer {
  const payload = Buffer.alloc(FRAME, 0x55);
  payload.writeUInt16BE(n & 0xffff, 0);
  return serialize({ payloadType: 0, sequenceNumber: n & 0xffff, timestamp: (n * FRAME) >>> 0, ssrc: SSRC, payload });
}

function send(bot: Socket, port: number, n: number): Promise<void> {
  return new Promise((r) => bot.send(packet(n), port, '127.0.0.1', () => r()));
}

/** every packet in one go: no await between the sends */
async function burst(bot: Socket, port: number, frames: readonly number[]): Promise<void> {
  await Promise.all(frames.map((n) => send(bot, port, n)));
}

/** what the counters must say for packets of one SSRC arriving in `order` (16-bit sequence numbers) */
function expectedFor(order: readonly number[]): { sequenceGaps: number; packetsLate: number; packetsLost: number } {
  let sequenceGaps = 0;
  let packetsLate = 0;
  let highest = -1;
  let extendedHighest = 0;
  order.forEach((seq, i) => {
    if (i > 0 && seq !== ((order[i - 1]! + 1) & 0xffff)) sequenceGaps++;
    if (highest === -1) {
      highest = seq;
      extendedHighest = seq;
      return;
    }
    const ahead = (seq - highest + 0x10000) % 0x10000;
    if (ahead === 0 || ahead > 0x8000) packetsLate++;
    else {
      highest = seq;
      extendedHighest += ahead;
    }
  });
  const expected = extendedHighest - order[0]! + 1;
  return { sequenceGaps, packetsLate, packetsLost: Math.max(0, expected - order.length) };
}

/** counters that must hold whatever the order: nothing dropped, nothing thrown, the sums add up */
function expectConsistent(session: RtpSession, delivered: readonly number[], logLines: Array<Record<string, unknown>>): void {
  const s = session.stats;
  expect(s).toMatchObject({
    packetsReceived: delivered.length,
    bytesReceived: delivered.length * (12 + FRAME),
    droppedForeign: 0,
    droppedMalformed: 0,
    droppedUnknownPt: 0,
    droppedSrtp: 0,
    ssrcChanges: 0,
    socketErrors: 0,
    delegateErrors: 0,
  });
  expect(session.packetsAccepted).toBe(delivered.length);
  expect(Number.isFinite(s.jitterMs) && s.jitterMs >= 0).toBe(true);
  expect(s.maxJitterMs).toBeGreaterThanOrEqual(s.jitterMs);
  expect(logLines.filter((l) => (l.level as number) >= 40)).toEqual([]);
}

describe('RtpSession: bursts and reordering from the bot', () => {
  it('a burst of 50 packets sent at once: all delivered, in order, no gap, none late or lost', async () => {
    const { session, bot, delivered, logLines } = await setup();
    const seqs = Array.from({ length: 50 }, (_, i) => 1000 + i);
    await burst(bot, session.localPort, seqs);
    await vi.waitFor(() => expect(delivered).toHaveLength(50));
    expect(delivered).toEqual(seqs);
    expectConsistent(session, delivered, logLines);
    expect(session.stats).toMatchObject({ sequenceGaps: 0, packetsLate: 0, packetsLost: 0 });
  });

  it('a reordered sequence: every packet delivered as it arrived, the swapped ones counted as gaps and late', async () => {
    const { session, bot, delivered, logLines } = await setup();
    const order = [1, 2, 3, 5, 4, 6, 8, 7, 9, 10];
    // one at a time, so the arrival order is exactly this one
    for (const n of order) await send(bot, session.localPort, n);
    await vi.waitFor(() => expect(delivered).toHaveLength(order.length));
    expect(delivered).toEqual(order);
    expectConsistent(session, delivered, logLines);
    // gaps: 3→5, 5→4, 4→6, 6→8, 8→7, 7→9; late: 4 (after 5) and 7 (after 8); nothing lost once 4 and 7 came
    expect(session.stats).toMatchObject({ sequenceGaps: 6, packetsLate: 2, packetsLost: 0 });
    expect(expectedFor(order)).toEqual({ sequenceGaps: 6, packetsLate: 2, packetsLost: 0 });
  });

  it('a burst of 50 reordered in small windows across the 16-bit wrap, with a duplicate: all delivered, counters match', async () => {
    const { session, bot, delivered, logLines, botReceived } = await setup();
    // sequence numbers 65510 … 65535, 0 … 23, each window of 5 reversed, then sequence number 1 a second time
    const inOrder = Array.from({ length: 50 }, (_, i) => 65510 + i);
    const order: number[] = [];
    for (let w = 0; w < inOrder.length; w += 5) order.push(...inOrder.slice(w, w + 5).reverse());
    order.push(65536 + 1);
    await burst(bot, session.localPort, order);
    await vi.waitFor(() => expect(delivered).toHaveLength(order.length));
    const bySeq = (a: number, b: number): number => a - b;
    expect([...delivered].sort(bySeq)).toEqual(order.map((n) => n & 0xffff).sort(bySeq));
    expectConsistent(session, delivered, logLines);
    // reckoned from the order they actually arrived in; in the order sent: 50 gaps (every step), 41 late (4 of each
    // window of 5, and the duplicate), 0 lost
    const expected = expectedFor(delivered);
    expect(expected.packetsLate).toBeGreaterThanOrEqual(40);
    expect(session.stats).toMatchObject(expected);
    // and the session carries on: its own frames still go to the bot
    const before = botReceived();
    await vi.waitFor(() => expect(botReceived()).toBeGreaterThan(before + 2));
  });
});
