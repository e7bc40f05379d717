import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import { DtmfPacketizer, parse, serialize, SrtpSession, type ParsedRtpPacket } from 'rtp-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaClock } from '../../../media/clock.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { RtpSession } from '../../../media/rtp-session.js';
import { newMasterKey, type SrtpKeys, type SrtpMasterKey } from '../../../media/sdes.js';
import type { RemoteMedia } from '../../../media/sdp.js';
import { GOLDEN_MASTER, GOLDEN_SRTP, goldenPlain } from './srtp-golden.js';
import { waitFor } from '../../support/wait-for.js';

/**
 * The bot's side of SDES-SRTP, built independently of RtpSession: rtp-packet's SrtpSession (which interoperates
 * with werift's, sip-notes §3.1) on a plain dgram socket. It encrypts with the bot's key and decrypts with ours.
 */
class SrtpPeer {
  /** every datagram as it arrived, still encrypted */
  readonly wire: Buffer[] = [];
  /** what decrypted, parsed */
  readonly received: ParsedRtpPacket[] = [];
  undecryptable = 0;
  private tx: SrtpSession;
  private readonly rx: SrtpSession;

  private constructor(readonly socket: Socket, readonly port: number, botKey: SrtpMasterKey, ourKey: SrtpMasterKey) {
    this.tx = new SrtpSession(botKey.key, botKey.salt);
    this.rx = new SrtpSession(ourKey.key, ourKey.salt);
    socket.on('message', (msg) => {
      this.wire.push(msg);
      const plain = this.rx.decryptRtp(msg);
      const pkt = plain && parse(plain);
      if (pkt) this.received.push(pkt);
      else this.undecryptable++;
    });
  }

  static async bind(botKey: SrtpMasterKey, ourKey: SrtpMasterKey): Promise<SrtpPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new SrtpPeer(s, s.address().port, botKey, ourKey);
  }

  encrypt(plain: Buffer): Buffer {
    return this.tx.encryptRtp(plain)!;
  }

  /** What the bot does on a re-INVITE with a new key. */
  rekey(botKey: SrtpMasterKey): void {
    this.tx = new SrtpSession(botKey.key, botKey.salt);
  }

  sendRaw(buf: Uint8Array, port: number): Promise<void> {
    return new Promise((r) => this.socket.send(buf, port, '127.0.0.1', () => r()));
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

function pcmu(seq: number, payload: Uint8Array, ssrc = 0x5eed1234, pt = 0): Buffer {
  return serialize({ payloadType: pt, sequenceNumber: seq, timestamp: seq * 160, ssrc, payload });
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup() {
  const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44200, max: 44299 });
  const logLines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  const audio: Buffer[] = [];
  const digits: string[] = [];
  const session = await RtpSession.open({
    pool,
    clock: new MediaClock(),
    log,
    delegate: { onAudio: (p) => audio.push(Buffer.from(p)), onDtmf: (d) => digits.push(d) },
  });
  const keys: SrtpKeys = { ourKey: newMasterKey(), theirKey: newMasterKey() };
  const peer = await SrtpPeer.bind(keys.theirKey, keys.ourKey);
  cleanup.push(() => session.close(), () => peer.close());
  const remote: RemoteMedia = {
    address: '127.0.0.1', port: peer.port, audioPayloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv', srtp: keys,
  };
  return { session, peer, keys, remote, audio, digits, logLines };
}

describe('RtpSession with SDES-SRTP', () => {
  it('encrypts every packet it sends with our key: the bot decrypts exactly the written audio', async () => {
    const { session, peer, remote } = await setup();
    const written = Buffer.from(Array.from({ length: 480 }, (_, i) => (i * 7) % 256));
    session.start(remote);
    session.write(written);
    expect(session.secure).toBe(true);
    await waitFor(() => peer.received.length >= 5);
    session.close();

    expect(peer.undecryptable).toBe(0);
    expect(peer.wire.every((w) => w.length === 12 + 160 + 10)).toBe(true); // + the 80-bit tag
    // the wire never carries the audio in the clear
    expect(peer.wire[0]!.subarray(12, 172).equals(written.subarray(0, 160))).toBe(false);
    const got = peer.received;
    expect(Buffer.concat(got.slice(0, 3).map((p) => p.payload)).equals(written)).toBe(true);
    expect(got.slice(3).every((p) => p.payload.every((b) => b === 0xff))).toBe(true);
    expect(got[0]!.marker).toBe(true);
    got.slice(1).forEach((p, i) => expect(p.sequenceNumber).toBe((got[i]!.sequenceNumber + 1) & 0xffff));
    expect(session.stats.bytesSent).toBe(peer.wire.length * 182);
  });

  it("decrypts the bot's packets with its key and hands over the audio bit-exact, DTMF included", async () => {
    const { session, peer, remote, audio, digits } = await setup();
    session.start(remote);
    const payloads = [0, 1, 2].map((n) => Buffer.from(Array.from({ length: 160 }, (_, i) => (i + n * 53) % 256)));
    for (const [n, p] of payloads.entries()) await peer.sendRaw(peer.encrypt(pcmu(100 + n, p)), session.localPort);
    const dtmf = new DtmfPacketizer({ ssrc: 0x5eed1234, payloadType: 101, clockRate: 8000, initialSequenceNumber: 103 });
    dtmf.startEvent('5', 480);
    for (const pkt of [dtmf.update(20), ...dtmf.endEvent(20)]) await peer.sendRaw(peer.encrypt(pkt), session.localPort);
    await waitFor(() => audio.length === 3 && digits.length === 1);

    expect(audio.map((a) => a.toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
    expect(digits).toEqual(['5']);
    expect(session.stats).toMatchObject({ droppedSrtp: 0, droppedMalformed: 0, dtmfPackets: 4 });
  });

  it('drops and counts a tampered packet, a replayed one and plain RTP, logging once per 10 s', async () => {
    const { session, peer, remote, audio, logLines } = await setup();
    session.start(remote);
    const payload = Buffer.alloc(160, 0x42);
    const good = peer.encrypt(pcmu(1, payload));
    const tampered = peer.encrypt(pcmu(2, payload));
    tampered[40]! ^= 0x01; // one bit of the encrypted payload
    const badTag = peer.encrypt(pcmu(3, payload));
    badTag[badTag.length - 1]! ^= 0x80;

    await peer.sendRaw(good, session.localPort);
    await peer.sendRaw(tampered, session.localPort);
    await peer.sendRaw(badTag, session.localPort);
    await peer.sendRaw(good, session.localPort); // replay
    await peer.sendRaw(pcmu(4, payload), session.localPort); // plain RTP while SRTP is on
    await peer.sendRaw(peer.encrypt(pcmu(5, payload)), session.localPort);
    await waitFor(() => session.stats.packetsReceived === 6);
    await waitFor(() => audio.length === 2);

    expect(session.stats).toMatchObject({ packetsReceived: 6, droppedSrtp: 4, droppedMalformed: 0, droppedForeign: 0 });
    expect(audio.every((a) => a.equals(payload))).toBe(true);
    const drops = logLines.filter((l) => l.msg?.toString().startsWith('dropping RTP'));
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ reason: 'srtp-unauthenticated-or-replayed' });
  });

  it('refuses plain RTCP on the RTP port of a secure call (not SRTCP), and counts junk without spending an HMAC on it', async () => {
    const { session, peer, remote } = await setup();
    session.start(remote);
    const rtcp = Buffer.alloc(28);
    rtcp[0] = 0x80;
    rtcp[1] = 200; // SR
    await peer.sendRaw(rtcp, session.localPort);
    await peer.sendRaw(Buffer.from([0x00, 0x01, 0x02]), session.localPort);
    await peer.sendRaw(Buffer.alloc(40, 0x40), session.localPort); // version 1
    await waitFor(() => session.stats.packetsReceived === 2 && session.stats.rtcp.dropped === 1);
    expect(session.stats).toMatchObject({ droppedUnknownPt: 0, droppedMalformed: 2, droppedSrtp: 0, rtcp: { received: 0, dropped: 1 } });
  });

  it('re-keys what it receives when a re-INVITE brings a new bot key; packets in flight under the old key still play', async () => {
    const { session, peer, remote, keys, audio, logLines } = await setup();
    session.start(remote);
    const a = Buffer.alloc(160, 0xa1);
    const b = Buffer.alloc(160, 0xb2);
    await peer.sendRaw(peer.encrypt(pcmu(1, a)), session.localPort);
    await waitFor(() => audio.length === 1);
    const inFlight = peer.encrypt(pcmu(2, a));

    const newBotKey = newMasterKey();
    session.setRemote({ ...remote, srtp: { ourKey: keys.ourKey, theirKey: newBotKey } });
    peer.rekey(newBotKey);
    await peer.sendRaw(inFlight, session.localPort); // old key, before any new-key packet
    await peer.sendRaw(peer.encrypt(pcmu(3, b)), session.localPort);
    await waitFor(() => audio.length === 3);
    // once the new key has worked, the old one is gone
    await peer.sendRaw(new SrtpSession(keys.theirKey.key, keys.theirKey.salt).encryptRtp(pcmu(4, a))!, session.localPort);
    await waitFor(() => session.stats.packetsReceived === 4);

    expect(audio.map((x) => x[0])).toEqual([0xa1, 0xa1, 0xb2]);
    expect(session.stats.droppedSrtp).toBe(1);
    expect(logLines.some((l) => l.msg === 'bot re-keyed SRTP')).toBe(true);
    // our own key did not change: the bot still decrypts what we send
    const before = peer.received.length;
    await waitFor(() => peer.received.length > before + 2);
    expect(peer.undecryptable).toBe(0);
  });

  it('keeps its contexts, and so its replay window, when a re-INVITE repeats the same keys', async () => {
    const { session, peer, remote, audio } = await setup();
    session.start(remote);
    const pkt = peer.encrypt(pcmu(7, Buffer.alloc(160, 1)));
    await peer.sendRaw(pkt, session.localPort);
    await waitFor(() => audio.length === 1);
    const copy = (k: SrtpMasterKey): SrtpMasterKey => ({ key: Buffer.from(k.key), salt: Buffer.from(k.salt) });
    session.setRemote({ ...remote, srtp: { ourKey: copy(remote.srtp!.ourKey), theirKey: copy(remote.srtp!.theirKey) } });
    await peer.sendRaw(pkt, session.localPort);
    await waitFor(() => session.stats.packetsReceived === 2);
    expect(session.stats.droppedSrtp).toBe(1);
    expect(audio).toHaveLength(1);
  });

  it('turns SRTP off when an answer without keys is applied', async () => {
    const { session, peer, remote, audio } = await setup();
    const { srtp: _keys, ...plain } = remote;
    session.start(plain);
    expect(session.secure).toBe(false);
    await peer.sendRaw(pcmu(1, Buffer.alloc(160, 3)), session.localPort);
    await waitFor(() => audio.length === 1);
    expect(session.stats.droppedSrtp).toBe(0);
  });

  it("plays a libsrtp bot's packets bit-exact across its sequence wrap (where rtp-packet 0.4.2 would play noise)", async () => {
    const { session, peer, remote, audio } = await setup();
    session.start({ ...remote, srtp: { ourKey: remote.srtp!.ourKey, theirKey: GOLDEN_MASTER } });
    for (const [, hex] of GOLDEN_SRTP) await peer.sendRaw(Buffer.from(hex, 'hex'), session.localPort);
    await waitFor(() => audio.length === GOLDEN_SRTP.length);
    expect(audio.map((a) => a.toString('hex'))).toEqual(GOLDEN_SRTP.map(([seq]) => goldenPlain(seq).subarray(12).toString('hex')));
    expect(session.stats.droppedSrtp).toBe(0);
  });
});
