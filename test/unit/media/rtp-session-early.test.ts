import { pino } from 'pino';
import { serialize, SrtpSession } from 'rtp-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaClock } from '../../../media/clock.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { RtpSession } from '../../../media/rtp-session.js';
import { newMasterKey } from '../../../media/sdes.js';
import { RtpPeer, remoteOf } from '../../support/rtp-peer.js';
import { waitFor } from '../../support/wait-for.js';

/**
 * Early media (RFC 3960): between a 18x with SDP and the 2xx the session takes the bot's packets (its prompt must
 * reach the caller at once) and sends the bot nothing, since nobody has answered yet; the 2xx starts the sending.
 */

const pcmu = (seq: number, fill: number): Buffer =>
  serialize({ payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc: 0xea51, payload: Buffer.alloc(160, fill) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup() {
  const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44300, max: 44399 });
  const clock = new MediaClock();
  const audio: Buffer[] = [];
  const session = await RtpSession.open({
    pool,
    clock,
    log: pino({ level: 'silent' }),
    delegate: { onAudio: (p) => audio.push(Buffer.from(p)) },
  });
  const peer = await RtpPeer.bind();
  cleanup.push(() => session.close(), () => peer.close());
  return { session, peer, clock, audio };
}

describe('RtpSession: early media', () => {
  it("receive() takes the bot's packets to onAudio at once, in order, and sends it nothing: no clock slot, not owed RTP", async () => {
    const { session, peer, clock, audio } = await setup();
    session.receive(remoteOf(peer));
    session.write(Buffer.alloc(320, 0x11)); // the caller speaks to nobody yet
    for (let seq = 1; seq <= 5; seq++) await peer.send(pcmu(seq, seq), session.localPort);
    await waitFor(() => audio.length === 5);
    await sleep(100);

    expect(audio.map((a) => a[0])).toEqual([1, 2, 3, 4, 5]);
    expect(peer.received).toEqual([]);
    expect(clock.size).toBe(0);
    expect(session.botSends).toBe(false);
    expect(session.stats).toMatchObject({ packetsSent: 0, packetsReceived: 5, droppedForeign: 0 });
    expect(session.packetsAccepted).toBe(5);
  });

  it('still drops packets from another IP than the early answer’s', async () => {
    const { session, peer, audio } = await setup();
    const stranger = await RtpPeer.bind('127.0.0.2');
    cleanup.push(() => stranger.close());
    session.receive(remoteOf(peer));
    await stranger.send(pcmu(1, 9), session.localPort);
    await peer.send(pcmu(2, 7), session.localPort);
    await waitFor(() => audio.length === 1);
    await waitFor(() => session.stats.droppedForeign === 1);
    expect(audio[0]![0]).toBe(7);
  });

  it('start() at the answer sends caller audio from then on, to the 2xx’s address: a new port moves it', async () => {
    const { session, peer, clock, audio } = await setup();
    const answered = await RtpPeer.bind();
    cleanup.push(() => answered.close());
    session.receive(remoteOf(peer));
    session.write(Buffer.alloc(320, 0x11)); // before the answer: cleared at start, never sent late
    await peer.send(pcmu(1, 1), session.localPort);
    await waitFor(() => audio.length === 1);

    session.start(remoteOf(answered));
    session.write(Buffer.alloc(160, 0x22));
    await waitFor(() => answered.received.length >= 3);
    await peer.send(pcmu(2, 2), session.localPort); // the bot keeps talking through the answer
    await waitFor(() => audio.length === 2);

    expect(peer.received).toEqual([]);
    expect(answered.received[0]!.payload.every((b) => b === 0x22)).toBe(true);
    expect(answered.received.some((p) => p.payload.some((b) => b === 0x11))).toBe(false);
    expect(answered.received[0]!.marker).toBe(true);
    expect(clock.size).toBe(1);
    expect(session.botSends).toBe(true);
  });

  it('with SRTP from the early answer, plain RTP is dropped and only the bot’s SRTP is taken', async () => {
    const { session, peer, audio } = await setup();
    const ourKey = newMasterKey();
    const theirKey = newMasterKey();
    session.receive(remoteOf(peer, { srtp: { ourKey, theirKey } }));
    await peer.send(pcmu(1, 3), session.localPort);
    await waitFor(() => session.stats.droppedSrtp === 1);
    const encrypted = new SrtpSession(theirKey.key, theirKey.salt).encryptRtp(pcmu(2, 4))!;
    await peer.send(encrypted, session.localPort);
    await waitFor(() => audio.length === 1);
    expect(audio[0]![0]).toBe(4);
    expect(session.secure).toBe(true);
  });

  it('after close(), receive() does nothing', async () => {
    const { session, peer } = await setup();
    session.close();
    session.receive(remoteOf(peer));
    expect(session.botSends).toBe(false);
  });
});
