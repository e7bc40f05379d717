import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { DtmfPacketizer, serialize } from 'rtp-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MediaClock } from '../../../media/clock.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { RtpSession } from '../../../media/rtp-session.js';
import { RtpPeer, remoteOf } from '../../support/rtp-peer.js';
import { waitFor } from '../../support/wait-for.js';

function pcmu(seq: number, payload: Uint8Array, ssrc = 0xabc, pt = 0): Buffer {
  return serialize({ payloadType: pt, sequenceNumber: seq, timestamp: seq * 160, ssrc, payload });
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Setup {
  session: RtpSession;
  peer: RtpPeer;
  pool: RtpPortPool;
  clock: MediaClock;
  audio: Buffer[];
  digits: string[];
  logLines: Array<Record<string, unknown>>;
}

async function setup(): Promise<Setup> {
  const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44000, max: 44099 });
  const clock = new MediaClock();
  const logLines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  const audio: Buffer[] = [];
  const digits: string[] = [];
  const session = await RtpSession.open({
    pool,
    clock,
    log,
    delegate: { onAudio: (p) => audio.push(Buffer.from(p)), onDtmf: (d) => digits.push(d) },
  });
  const peer = await RtpPeer.bind();
  cleanup.push(() => session.close(), () => peer.close());
  return { session, peer, pool, clock, audio, digits, logLines };
}

describe('RtpSession', () => {
  it('sends 50 packets a second of exactly the written audio, then μ-law silence', async () => {
    const { session, peer } = await setup();
    const written = Buffer.from(Array.from({ length: 480 }, (_, i) => i % 251));
    // audio from before the answer is not sent late: it would delay every later frame for the whole call
    session.write(Buffer.alloc(480, 0x11));
    session.start(remoteOf(peer));
    session.write(written);
    await new Promise((r) => setTimeout(r, 1000));
    session.close();
    // the last datagram may still be in flight when close() returns: compare once everything sent has arrived
    const sent = session.stats.packetsSent;
    await waitFor(() => peer.received.length >= sent);

    const got = peer.received;
    // ~49 frames (the first is 20-40 ms after start); loose bounds for a busy machine
    expect(got.length).toBeGreaterThanOrEqual(44);
    expect(got.length).toBeLessThanOrEqual(52);
    expect(Buffer.concat(got.slice(0, 3).map((p) => p.payload)).equals(written)).toBe(true);
    expect(got.slice(3).every((p) => p.payload.length === 160 && p.payload.every((b) => b === 0xff))).toBe(true);

    expect(got.map((p) => p.marker)).toEqual([true, ...Array(got.length - 1).fill(false)]);
    expect(new Set(got.map((p) => p.payloadType))).toEqual(new Set([0]));
    expect(new Set(got.map((p) => p.ssrc)).size).toBe(1);
    got.slice(1).forEach((p, i) => {
      expect(p.sequenceNumber).toBe((got[i]!.sequenceNumber + 1) & 0xffff);
      expect(p.timestamp).toBe((got[i]!.timestamp + 160) >>> 0);
    });
    expect(session.stats).toMatchObject({ packetsSent: got.length, bytesSent: got.length * 172, callerSilenceInsertedFrames: got.length - 3 });
  });

  it('holds no caller audio before the answer: a bot that rings for 1.5 s costs no delay, no cap drop, no "speech lost"', async () => {
    const { session, peer } = await setup();
    // 1.5 s of speech (0x11 is loud μ-law) while the INVITE rings: more than the playout buffer's 1 s cap
    for (let i = 0; i < 75; i++) session.write(Buffer.alloc(160, 0x11));
    expect(session.stats).toMatchObject({ playoutDelayMs: 0, maxPlayoutDelayMs: 0, callerSpeechLostFrames: 0 });
    session.start(remoteOf(peer));
    const spoken = Buffer.from(Array.from({ length: 160 }, (_, i) => i % 120));
    session.write(spoken);
    await waitFor(() => peer.received.length >= 1);
    expect(peer.received[0]!.payload.equals(spoken)).toBe(true);
    expect(session.stats).toMatchObject({ maxPlayoutDelayMs: 20, callerSpeechLostFrames: 0 });
  });

  it('looks at the media clock as each packet arrives, caller audio or bot RTP, so a frame due then need not wait for the batch', async () => {
    const { session, peer, clock, audio } = await setup();
    session.start(remoteOf(peer));
    const poll = vi.spyOn(clock, 'poll');
    session.write(Buffer.alloc(160, 0x11));
    expect(poll).toHaveBeenCalledTimes(1);
    await peer.send(pcmu(1, Buffer.alloc(160, 0x22)), session.localPort);
    await waitFor(() => audio.length === 1);
    expect(poll).toHaveBeenCalledTimes(2);
  });

  it('passes PCMU payloads to onAudio byte for byte, from any port of the answer IP', async () => {
    const { session, peer, audio } = await setup();
    session.start(remoteOf(peer));
    const otherPort = await RtpPeer.bind();
    cleanup.push(() => otherPort.close());
    const a = Buffer.from(Array.from({ length: 160 }, (_, i) => i));
    const b = Buffer.from(Array.from({ length: 80 }, (_, i) => 255 - i));
    await peer.send(pcmu(1, a), session.localPort);
    await otherPort.send(pcmu(2, b), session.localPort);
    await waitFor(() => audio.length === 2);
    expect(audio[0]!.equals(a)).toBe(true);
    expect(audio[1]!.equals(b)).toBe(true);
    expect(session.stats).toMatchObject({ packetsReceived: 2, droppedForeign: 0, sequenceGaps: 0, ssrcChanges: 0 });
  });

  it('accepts a new SSRC and a sequence jump (sipp pcap replays), counting them', async () => {
    const { session, peer, audio } = await setup();
    session.start(remoteOf(peer));
    const payload = Buffer.alloc(160, 0x55);
    await peer.send(pcmu(1, payload, 0x1111), session.localPort);
    await peer.send(pcmu(2, payload, 0x1111), session.localPort);
    await peer.send(pcmu(5000, payload, 0x2222), session.localPort);
    await peer.send(pcmu(5007, payload, 0x2222), session.localPort);
    await waitFor(() => audio.length === 4);
    expect(session.stats).toMatchObject({ ssrcChanges: 1, sequenceGaps: 1 });
  });

  it('drops packets from a foreign IP, logging once per 10 s', async () => {
    const { session, peer, audio, logLines } = await setup();
    const stranger = await RtpPeer.bind('127.0.0.2');
    cleanup.push(() => stranger.close());
    const payload = Buffer.alloc(160, 1);

    session.start(remoteOf(peer));
    for (let i = 0; i < 5; i++) await stranger.send(pcmu(10 + i, payload), session.localPort);
    await peer.send(pcmu(2, payload), session.localPort);
    await waitFor(() => audio.length === 1);

    expect(session.stats).toMatchObject({ packetsReceived: 6, droppedForeign: 5 });
    const drops = logLines.filter((l) => l.msg?.toString().startsWith('dropping RTP'));
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ reason: 'foreign-source', rtpPort: session.localPort });
  });

  it("takes the bot's packets that came just before its answer was read, in order; a stranger's are still dropped", async () => {
    const { session, peer, audio } = await setup();
    const stranger = await RtpPeer.bind('127.0.0.2');
    cleanup.push(() => stranger.close());

    await peer.send(pcmu(1, Buffer.alloc(160, 1)), session.localPort);
    await stranger.send(pcmu(7, Buffer.alloc(160, 7)), session.localPort);
    await peer.send(pcmu(2, Buffer.alloc(160, 2)), session.localPort);
    await waitFor(() => session.stats.packetsReceived === 3);
    session.start(remoteOf(peer));
    await peer.send(pcmu(3, Buffer.alloc(160, 3)), session.localPort);
    await waitFor(() => audio.length === 3);

    expect(audio.map((a) => a[0])).toEqual([1, 2, 3]);
    expect(session.stats).toMatchObject({ packetsReceived: 4, droppedForeign: 1, sequenceGaps: 0 });
  });

  it('holds what came in the last 200 ms before the answer, at most 16 packets: older ones and the overflow are dropped as before-start', async () => {
    const old = await setup();
    await old.peer.send(pcmu(1, Buffer.alloc(160, 1)), old.session.localPort);
    await waitFor(() => old.session.stats.packetsReceived === 1);
    await sleep(250); // a stray, older than any packet of an answer being read
    await old.peer.send(pcmu(2, Buffer.alloc(160, 2)), old.session.localPort);
    await waitFor(() => old.session.stats.packetsReceived === 2);
    old.session.start(remoteOf(old.peer));
    expect(old.audio.map((a) => a[0])).toEqual([2]);
    expect(old.session.stats).toMatchObject({ droppedForeign: 1 });
    expect(old.logLines.filter((l) => l.msg?.toString().startsWith('dropping RTP'))).toMatchObject([{ reason: 'before-start' }]);

    const many = await setup();
    for (let seq = 1; seq <= 20; seq++) await many.peer.send(pcmu(seq, Buffer.alloc(160, seq)), many.session.localPort);
    await waitFor(() => many.session.stats.packetsReceived === 20);
    many.session.start(remoteOf(many.peer));
    expect(many.audio.map((a) => a[0])).toEqual(Array.from({ length: 16 }, (_, i) => 5 + i));
    expect(many.session.stats).toMatchObject({ packetsReceived: 20, droppedForeign: 4 });
  });

  it('drops malformed packets and unknown payload types (CN, PCMA), counting each; RTCP on the RTP port goes to RTCP', async () => {
    const { session, peer, audio } = await setup();
    session.start(remoteOf(peer));
    const payload = Buffer.alloc(160, 2);
    const versionOne = pcmu(1, payload);
    versionOne[0] = 0x40;
    const rtcpSenderReport = Buffer.alloc(28);
    rtcpSenderReport[0] = 0x80;
    rtcpSenderReport[1] = 200; // parses as marker + PT 72
    rtcpSenderReport.writeUInt16BE(6, 2);

    await peer.send(Buffer.from([0x80, 0, 0, 1, 0]), session.localPort); // truncated header
    await peer.send(versionOne, session.localPort);
    await peer.send(pcmu(2, Buffer.alloc(0)), session.localPort); // empty PCMU
    await peer.send(pcmu(3, Buffer.of(40), 0xabc, 13), session.localPort); // comfort noise
    await peer.send(rtcpSenderReport, session.localPort);
    await peer.send(pcmu(4, payload, 0xabc, 8), session.localPort); // PCMA, never offered
    await peer.send(pcmu(5, payload), session.localPort);
    await waitFor(() => audio.length === 1);

    // RFC 5761 §4: the SR is told from RTP by its type and read as the bot's report, not counted as RTP
    expect(session.stats).toMatchObject({ packetsReceived: 6, droppedMalformed: 3, droppedUnknownPt: 2, droppedForeign: 0, rtcp: { received: 1, dropped: 0 } });
  });

  it('drops a PCMU payload longer than 200 ms (1,600 bytes, RFC 3551 §4.2) as malformed, with one log line: it never reaches Talkdesk', async () => {
    const { session, peer, audio, logLines } = await setup();
    session.start(remoteOf(peer));
    const longest = Buffer.alloc(1600, 0x12);
    await peer.send(pcmu(1, Buffer.alloc(65_000, 0x34)), session.localPort); // the 65,000-byte media frame of issue 13
    await peer.send(pcmu(2, Buffer.alloc(1601, 0x56)), session.localPort);
    await peer.send(pcmu(3, longest), session.localPort);
    await waitFor(() => session.stats.packetsReceived === 3);

    expect(audio.map((a) => a.length)).toEqual([1600]);
    expect(audio[0]!.equals(longest)).toBe(true);
    expect(session.stats).toMatchObject({ packetsReceived: 3, droppedMalformed: 2 });
    expect(logLines.filter((l) => l['msg'] === 'dropping RTP packets (logged at most every 10 s)')).toMatchObject([
      { reason: 'oversized-payload', payloadType: 0 },
    ]);
  });

  it('reports a bot digit once, using the telephone-event PT from the answer', async () => {
    const { session, peer, digits } = await setup();
    session.start(remoteOf(peer, { dtmfPayloadType: 96 }));
    const keyPress = (pt: number, tone: string, ts: number): Buffer[] => {
      const p = new DtmfPacketizer({ ssrc: 0x77, payloadType: pt, clockRate: 8000 });
      p.startEvent(tone, ts);
      return [p.update(20), p.update(20), ...p.endEvent(20)];
    };
    for (const pkt of keyPress(101, '3', 800)) await peer.send(pkt, session.localPort); // not the answer's PT
    for (const pkt of keyPress(96, '7', 1600)) await peer.send(pkt, session.localPort);
    await waitFor(() => session.stats.dtmfPackets === 5);
    expect(digits).toEqual(['7']);
    expect(session.stats.droppedUnknownPt).toBe(5);
  });

  it('keeps SSRC, sequence and timestamp running across setRemote (re-INVITE) to a new destination', async () => {
    const { session, peer } = await setup();
    const moved = await RtpPeer.bind();
    cleanup.push(() => moved.close());
    session.start(remoteOf(peer));
    await waitFor(() => peer.received.length >= 3);
    session.setRemote(remoteOf(moved));
    await waitFor(() => moved.received.length >= 3);
    const last = peer.received.at(-1)!;
    const next = moved.received[0]!;
    expect(next.ssrc).toBe(last.ssrc);
    expect(next.sequenceNumber).toBe((last.sequenceNumber + 1) & 0xffff);
    expect(next.timestamp).toBe((last.timestamp + 160) >>> 0);
    expect(next.marker).toBe(false);
  });

  it('sends nothing while the answer holds (c=0.0.0.0 / inactive), and resumes with a marker and the elapsed timestamp', async () => {
    const { session, peer } = await setup();
    session.start(remoteOf(peer));
    await waitFor(() => peer.received.length >= 2);
    session.setRemote({ ...remoteOf(peer), address: '0.0.0.0', direction: 'inactive' });
    const before = peer.received.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(peer.received.length).toBeLessThanOrEqual(before + 1); // at most one already in flight
    const held = peer.received.at(-1)!;
    session.setRemote(remoteOf(peer));
    await waitFor(() => peer.received.length > before + 1);
    const resumed = peer.received.find((p) => p.sequenceNumber === ((held.sequenceNumber + 1) & 0xffff))!;
    expect(resumed.marker).toBe(true);
    expect((resumed.timestamp - held.timestamp) >>> 0).toBeGreaterThanOrEqual(160 * 8);
  });

  it('close() removes the clock sink, closes the socket, returns the port, and is idempotent', async () => {
    const { session, peer, pool, clock } = await setup();
    session.start(remoteOf(peer));
    expect(pool.inUse).toBe(1);
    expect(clock.size).toBe(1);
    session.close();
    session.close();
    expect(pool.inUse).toBe(0);
    expect(clock.size).toBe(0);
    session.write(Buffer.alloc(160)); // ignored
    session.start(remoteOf(peer)); // ignored
    expect(clock.size).toBe(0);

    // the port really is free again
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(session.localPort, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((r) => s.close(() => r()));

    const sent = peer.received.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(peer.received.length).toBe(sent);
  });

  it('survives a throwing delegate and counts it', async () => {
    const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44100, max: 44110 });
    const session = await RtpSession.open({
      pool,
      clock: new MediaClock(),
      log: pino({ level: 'silent' }),
      delegate: {
        onAudio: () => {
          throw new Error('encoder broke');
        },
      },
    });
    const peer = await RtpPeer.bind();
    cleanup.push(() => session.close(), () => peer.close());
    session.start(remoteOf(peer));
    await peer.send(pcmu(1, Buffer.alloc(160)), session.localPort);
    await peer.send(pcmu(2, Buffer.alloc(160)), session.localPort);
    await waitFor(() => session.stats.delegateErrors === 2);
  });
});
