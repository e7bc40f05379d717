import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import { buildRR, buildSDES, buildSR, parse, parseRTCPCompound, serialize, SrtpSession, type ParsedRtcpPacket } from 'rtp-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaClock } from '../../../media/clock.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { isRtcp, ntpMiddle } from '../../../media/rtcp.js';
import { RtpSession } from '../../../media/rtp-session.js';
import { newMasterKey } from '../../../media/sdes.js';
import type { RemoteMedia } from '../../../media/sdp.js';
import { waitFor } from '../../support/wait-for.js';

const BOT_SSRC = 0xb0b;

/** The bot's two ports: RTP, and RTCP on a port of its own (announced by a=rtcp) or on the RTP one (a=rtcp-mux). */
class Bot {
  readonly rtp: number[] = [];
  /** every RTCP datagram, by the port it came to */
  readonly rtcp: Array<{ on: 'rtp' | 'rtcp'; pkt: Buffer }> = [];
  private constructor(
    readonly media: Socket,
    readonly control: Socket,
  ) {
    const take = (on: 'rtp' | 'rtcp') => (msg: Buffer) => {
      if (isRtcp(msg)) this.rtcp.push({ on, pkt: msg });
      else if (parse(msg)) this.rtp.push(parse(msg)!.ssrc);
    };
    media.on('message', take('rtp'));
    control.on('message', take('rtcp'));
  }
  static async start(address = '127.0.0.1'): Promise<Bot> {
    const bind = async (): Promise<Socket> => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, address, () => r()));
      return s;
    };
    return new Bot(await bind(), await bind());
  }
  remote(extra: Partial<RemoteMedia> = {}): RemoteMedia {
    return { address: '127.0.0.1', port: this.media.address().port, audioPayloadType: 0, direction: 'sendrecv', rtcpPort: this.control.address().port, ...extra };
  }
  send(buf: Buffer, port: number, from: 'rtp' | 'rtcp' = 'rtp'): Promise<void> {
    return new Promise((r) => (from === 'rtp' ? this.media : this.control).send(buf, port, '127.0.0.1', () => r()));
  }
  async speak(port: number, frames: number): Promise<void> {
    for (let n = 0; n < frames; n++) {
      await this.send(serialize({ payloadType: 0, sequenceNumber: 100 + n, timestamp: n * 160, ssrc: BOT_SSRC, payload: Buffer.alloc(160, 0x42) }), port);
    }
  }
  close(): void {
    this.media.close();
    this.control.close();
  }
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup() {
  const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44600, max: 44699 });
  const session = await RtpSession.open({ pool, clock: new MediaClock(), log: pino({ level: 'silent' }), delegate: { onAudio: () => undefined } });
  const bot = await Bot.start();
  cleanup.push(() => session.close(), () => bot.close());
  return { session, bot };
}

const types = (pkt: Buffer): number[] => parseRTCPCompound(pkt).map((p) => p.type);
const first = (pkt: Buffer): ParsedRtcpPacket => parseRTCPCompound(pkt)[0]!;

describe('RtpSession: RTCP (RFC 3550 §6)', () => {
  it("reports to the bot's RTCP port from ours (RTP + 1): an SR with a block on its stream, echoing its SR; reads its RR; BYE at the end", async () => {
    const { session, bot } = await setup();
    session.start(bot.remote());
    await bot.speak(session.localPort, 20);
    const botSr = buildSR({ ssrc: BOT_SSRC, ntpTimestamp: [0x0001aaaa, 0xbbbb0000], rtpTimestamp: 0, packetCount: 20, octetCount: 3200 });
    await bot.send(Buffer.concat([botSr, buildSDES(BOT_SSRC, 'bot')]), session.localPort + 1, 'rtcp');

    // the first report comes 1.0-3.1 s after the start (RFC 3550 §6.3: 2.5 s spread over [0.5, 1.5], / 1.218)
    await waitFor(() => bot.rtcp.length >= 1, 4000);
    const report = bot.rtcp[0]!.pkt;
    expect(bot.rtcp[0]!.on).toBe('rtcp');
    expect(types(report)).toEqual([200, 202]);
    const sr = first(report);
    expect(sr.ssrc).toBe(bot.rtp[0]); // our RTP's SSRC
    expect(sr.packetCount).toBeGreaterThan(40);
    expect(sr.octetCount).toBe(sr.packetCount! * 160);
    expect(sr.reports).toEqual([
      expect.objectContaining({ mediaSsrc: BOT_SSRC, fractionLost: 0, totalLost: 0, highestSeq: 119, lastSR: 0xaaaabbbb }),
    ]);
    expect(parseRTCPCompound(report)[1]!.cname).toMatch(/^[A-Za-z0-9+/]{16}$/);

    // the bot's answer: it lost 10 of ours, and echoes our SR at once (DLSR 0)
    const lsr = ntpMiddle({ seconds: sr.ntpTimestampMsw!, fraction: sr.ntpTimestampLsw! });
    const rr = buildRR({ ssrc: BOT_SSRC, mediaSsrc: sr.ssrc!, fractionLost: 26, totalLost: 10, highestSeq: 1, jitter: 24, lastSR: lsr, delaySinceLastSR: 0 });
    await bot.send(Buffer.concat([rr, buildSDES(BOT_SSRC, 'bot')]), session.localPort + 1, 'rtcp');
    await waitFor(() => session.stats.rtcp.received === 2);
    expect(session.stats.rtcp.bot).toMatchObject({ fractionLost: 0.102, cumulativeLost: 10, jitterMs: 3 });
    expect(session.stats.rtcp.bot!.rttMs).toBeGreaterThanOrEqual(0);
    expect(session.stats.rtcp.bot!.rttMs).toBeLessThan(1000);

    const before = bot.rtcp.length;
    session.close();
    await waitFor(() => bot.rtcp.length === before + 1);
    expect(types(bot.rtcp.at(-1)!.pkt)).toEqual([200, 202, 203]);
    expect(session.stats.rtcp).toMatchObject({ sent: before + 1, received: 2, dropped: 0 });
  });

  it('with a=rtcp-mux, reports go to the RTP port and the bot’s come on ours', async () => {
    const { session, bot } = await setup();
    session.start(bot.remote({ rtcpMux: true }));
    const rr = buildRR({ ssrc: BOT_SSRC, mediaSsrc: 1, fractionLost: 0, totalLost: 0, highestSeq: 0, jitter: 0, lastSR: 0, delaySinceLastSR: 0 });
    await bot.send(Buffer.concat([rr, buildSDES(BOT_SSRC, 'bot')]), session.localPort);
    await waitFor(() => session.stats.rtcp.received === 1);
    session.close();
    await waitFor(() => bot.rtcp.length === 1);
    expect(bot.rtcp[0]!.on).toBe('rtp');
    expect(types(bot.rtcp[0]!.pkt).at(-1)).toBe(203);
    // counted as RTCP, not as RTP from the bot
    expect(session.stats).toMatchObject({ packetsReceived: 0, droppedUnknownPt: 0 });
  });

  it('with SRTP, reports are SRTCP both ways (checked with rtp-packet’s SRTCP, not ours); plain RTCP is refused', async () => {
    const { session, bot } = await setup();
    const ourKey = newMasterKey();
    const theirKey = newMasterKey();
    session.start(bot.remote({ srtp: { ourKey, theirKey } }));
    const botTx = new SrtpSession(theirKey.key, theirKey.salt);
    const rr = Buffer.concat([buildRR({ ssrc: BOT_SSRC, mediaSsrc: 1, fractionLost: 0, totalLost: 0, highestSeq: 0, jitter: 0, lastSR: 0, delaySinceLastSR: 0 }), buildSDES(BOT_SSRC, 'bot')]);
    await bot.send(botTx.encryptRtcp(rr)!, session.localPort + 1, 'rtcp');
    await bot.send(rr, session.localPort + 1, 'rtcp');
    await waitFor(() => session.stats.rtcp.received + session.stats.rtcp.dropped === 2);
    expect(session.stats.rtcp).toMatchObject({ received: 1, dropped: 1 });
    session.close();
    await waitFor(() => bot.rtcp.length === 1);
    const plain = new SrtpSession(ourKey.key, ourKey.salt).decryptRtcp(bot.rtcp[0]!.pkt);
    expect(plain).not.toBeNull();
    expect(types(plain!)).toEqual([201, 202, 203]);
  });

  it("drops RTCP from any address but the answer's, counted, and says nothing before media starts", async () => {
    const { session, bot } = await setup();
    const stranger = await Bot.start('127.0.0.2');
    cleanup.push(() => stranger.close());
    session.start(bot.remote());
    const rr = Buffer.concat([buildRR({ ssrc: 9, mediaSsrc: 1, fractionLost: 0, totalLost: 0, highestSeq: 0, jitter: 0, lastSR: 0, delaySinceLastSR: 0 }), buildSDES(9, 'x')]);
    await new Promise<void>((r) => stranger.control.send(rr, session.localPort + 1, '127.0.0.1', () => r()));
    await waitFor(() => session.stats.rtcp.dropped === 1);
    expect(session.stats.rtcp).toMatchObject({ received: 0, dropped: 1 });

    // a session closed before the answer sent no media, so it has no RTCP BYE to say
    const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 44700, max: 44709 });
    const unanswered = await RtpSession.open({ pool, clock: new MediaClock(), log: pino({ level: 'silent' }), delegate: { onAudio: () => undefined } });
    unanswered.close();
    expect(unanswered.stats.rtcp.sent).toBe(0);
  });
});
