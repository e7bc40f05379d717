import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import { parse, parseDtmf, type ParsedRtpPacket } from 'rtp-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaClock } from '../../../media/clock.js';
import { DtmfReceiver } from '../../../media/dtmf.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { RtpSession } from '../../../media/rtp-session.js';
import type { RemoteMedia } from '../../../media/sdp.js';
import { waitFor as waitUntil } from '../../support/wait-for.js';

// RtpSession.sendDigit(): RFC 4733 events to the bot on the audio's own stream, checked packet by packet as a plain
// UDP peer receives them, and decoded by the same DtmfReceiver that reads the bot's digits.

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(dtmfPayloadType: number | undefined) {
  const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44500, max: 44599 });
  const logLines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  const session = await RtpSession.open({ pool, clock: new MediaClock(), log, delegate: { onAudio: () => undefined } });
  const peer: Socket = createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
  const received: ParsedRtpPacket[] = [];
  peer.on('message', (msg) => {
    const pkt = parse(msg);
    if (pkt) received.push(pkt);
  });
  cleanup.push(() => session.close(), () => new Promise<void>((r) => peer.close(() => r())));
  const remote: RemoteMedia = { address: '127.0.0.1', port: peer.address().port, audioPayloadType: 0, direction: 'sendrecv' };
  if (dtmfPayloadType !== undefined) remote.dtmfPayloadType = dtmfPayloadType;
  return { session, received, logLines, remote };
}

/** this file's packets take longer to settle than the default wait */
const waitFor = (cond: () => boolean, ms = 3000): Promise<void> => waitUntil(cond, ms);

describe('RtpSession.sendDigit (RFC 4733 to the bot)', () => {
  it('sends each digit as 5 updates and 3 end packets in place of the audio, on its SSRC, sequence and clock', async () => {
    const { session, received, remote } = await setup(96);
    session.write(Buffer.alloc(160 * 100, 0x11));
    session.start(remote);
    await waitFor(() => received.length >= 3);
    expect(session.sendDigit('5')).toBe(true);
    expect(session.sendDigit('#')).toBe(true);
    await waitFor(() => received.filter((p) => p.payloadType === 96).length === 16 && received.at(-1)!.payloadType === 0);
    await waitFor(() => received.length >= 24);
    session.close();

    // one stream: a single SSRC, sequence numbers and timestamps without a gap across audio and events
    expect(new Set(received.map((p) => p.ssrc)).size).toBe(1);
    received.slice(1).forEach((p, i) => expect(p.sequenceNumber).toBe((received[i]!.sequenceNumber + 1) & 0xffff));
    const first = received.findIndex((p) => p.payloadType === 96);
    const events = received.slice(first, first + 16);
    expect(events.every((p) => p.payloadType === 96)).toBe(true);
    // the digit starts at the audio's current timestamp: the frame it replaces
    const lastAudio = received[first - 1]!;
    const startTs = (lastAudio.timestamp + 160) >>> 0;
    for (const [k, tone] of [[0, '5'], [1, '#']] as const) {
      const digit = events.slice(k * 8, k * 8 + 8);
      expect(digit.map((p) => p.timestamp)).toEqual(Array(8).fill((startTs + k * 8 * 160) >>> 0));
      expect(digit.map((p) => p.marker)).toEqual([true, false, false, false, false, false, false, false]);
      const payloads = digit.map((p) => parseDtmf(p.payload)!);
      expect(payloads.map((e) => e.tone)).toEqual(Array(8).fill(tone));
      expect(payloads.map((e) => e.duration)).toEqual([160, 320, 480, 640, 800, 800, 800, 800]);
      expect(payloads.map((e) => e.end)).toEqual([false, false, false, false, false, true, true, true]);
    }
    // the audio resumes where its clock is now, as a new talkspurt
    const resumed = received[first + 16]!;
    expect(resumed.payloadType).toBe(0);
    expect(resumed.timestamp).toBe((startTs + 16 * 160) >>> 0);
    expect(resumed.marker).toBe(true);
    expect(received.slice(first + 17).every((p) => p.payloadType === 0 && !p.marker)).toBe(true);
    // the suppressed audio was consumed, not delayed: the caller's frames keep their place on the clock
    expect(session.stats).toMatchObject({ dtmfPacketsSent: 16, packetsSent: received.length });

    const heard: Array<[string, number]> = [];
    const receiver = new DtmfReceiver((d, ms) => heard.push([d, ms]));
    for (const p of events) receiver.receive(p.timestamp, p.payload);
    expect(heard).toEqual([['5', 100], ['#', 100]]);
  });

  it('drops digits when the answer had no telephone-event, logging it once', async () => {
    const { session, received, logLines, remote } = await setup(undefined);
    session.start(remote);
    expect(session.sendDigit('1')).toBe(false);
    expect(session.sendDigit('2')).toBe(false);
    await waitFor(() => received.length >= 10);
    expect(received.every((p) => p.payloadType === 0)).toBe(true);
    expect(logLines.filter((l) => String(l.msg).includes('no telephone-event'))).toHaveLength(1);
    expect(session.stats.dtmfPacketsSent).toBe(0);
  });

  it('refuses what is not a DTMF key, and anything after close()', async () => {
    const { session, remote } = await setup(101);
    session.start(remote);
    expect(session.sendDigit('E')).toBe(false);
    expect(session.sendDigit('12')).toBe(false);
    session.close();
    expect(session.sendDigit('1')).toBe(false);
  });

  it('counts packets accepted from the bot, and knows when the answer says the bot sends', async () => {
    const { session, remote } = await setup(101);
    expect(session.botSends).toBe(false); // not started
    session.start({ ...remote, direction: 'recvonly' });
    expect(session.botSends).toBe(false);
    session.setRemote(remote);
    expect(session.botSends).toBe(true);
    const bot = createSocket('udp4');
    await new Promise<void>((r) => bot.bind(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => bot.close(() => r())));
    const pcmu = (seq: number, pt = 0) => {
      const b = Buffer.alloc(12 + 160, 0x22);
      b[0] = 0x80;
      b[1] = pt;
      b.writeUInt16BE(seq, 2);
      return b;
    };
    for (const pkt of [pcmu(1), pcmu(2), pcmu(3, 13), Buffer.from([1, 2, 3])]) {
      await new Promise<void>((r) => bot.send(pkt, session.localPort, '127.0.0.1', () => r()));
    }
    await waitFor(() => session.stats.packetsReceived === 4);
    expect(session.packetsAccepted).toBe(2);
    session.close();
    expect(session.botSends).toBe(false);
  });
});
