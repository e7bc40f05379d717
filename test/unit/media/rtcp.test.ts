import { buildRR, buildSDES, buildSR, parseRTCPCompound } from 'rtp-packet';
import { describe, expect, it } from 'vitest';
import { buildCompound, ntpMiddle, ntpNow, readCompound } from '../../../media/rtcp.js';
import { rtcpIntervalMs, type IntervalInputs } from '../../../media/rtcp-interval.js';
import { RtcpReporter, type ReceivedStream } from '../../../media/rtcp-reporter.js';

const OURS = 0x11111111;
const BOTS = 0x22222222;
const SDES = buildSDES(OURS, 'cname');

describe('RTCP packets (RFC 3550 §6.4)', () => {
  it('builds an SR with one report block, SDES and BYE that rtp-packet reads back field for field', () => {
    const pkt = buildCompound({
      ssrc: OURS,
      sender: { ntp: { seconds: 3_900_000_000, fraction: 0x80000000 }, rtpTimestamp: 123456, packetCount: 250, octetCount: 40000 },
      block: { ssrc: BOTS, fractionLost: 25, cumulativeLost: -3, extendedHighestSeq: 0x1_0005, jitter: 40, lastSr: 0xabcd1234, delaySinceLastSr: 65536 },
      sdes: SDES,
      bye: true,
    });
    const [sr, sdes, bye, ...rest] = parseRTCPCompound(pkt);
    expect(rest).toEqual([]);
    expect(sr).toMatchObject({ name: 'SR', ssrc: OURS, ntpTimestampMsw: 3_900_000_000, ntpTimestampLsw: 0x80000000, rtpTimestamp: 123456, packetCount: 250, octetCount: 40000 });
    expect(sr!.reports).toEqual([
      { mediaSsrc: BOTS, fractionLost: 25, totalLost: 0xfffffd, highestSeq: 0x1_0005, jitter: 40, lastSR: 0xabcd1234, delaySinceLastSR: 65536 },
    ]);
    expect(sdes).toMatchObject({ name: 'SDES', ssrc: OURS, cname: 'cname' });
    expect(bye).toMatchObject({ name: 'BYE', ssrcs: [OURS] });
  });

  it('builds an RR without sender info, with or without a block; the lengths add up to the datagram', () => {
    for (const block of [undefined, { ssrc: BOTS, fractionLost: 0, cumulativeLost: 0x7fffffff, extendedHighestSeq: 1, jitter: 0, lastSr: 0, delaySinceLastSr: 0 }]) {
      const pkt = buildCompound({ ssrc: OURS, ...(block ? { block } : {}), sdes: SDES });
      expect(pkt[1]).toBe(201);
      expect(pkt[0]! & 0x1f).toBe(block ? 1 : 0);
      expect((pkt.readUInt16BE(2) + 1) * 4).toBe(block ? 32 : 8);
      // a cumulative loss past 24 bits is clamped, not wrapped to a small number
      if (block) expect(readCompound(Buffer.concat([buildSR({ ssrc: BOTS, ntpTimestamp: [1, 2], rtpTimestamp: 0, packetCount: 0, octetCount: 0 }), pkt]), BOTS)).toMatchObject({ ok: true });
      if (block) expect(parseRTCPCompound(pkt)[0]!.reports![0]!.totalLost).toBe(0x7fffff);
    }
  });

  it("reads the bot's SR (its NTP middle bits) and the block about our stream among others, and its BYE", () => {
    const sr = buildSR({ ssrc: BOTS, ntpTimestamp: [0x12345678, 0x9abcdef0], rtpTimestamp: 1, packetCount: 2, octetCount: 3 });
    const aboutSomeoneElse = buildRR({ ssrc: BOTS, mediaSsrc: 0x33, fractionLost: 1, totalLost: 1, highestSeq: 1, jitter: 1, lastSR: 1, delaySinceLastSR: 1 });
    const aboutUs = buildRR({ ssrc: BOTS, mediaSsrc: OURS, fractionLost: 64, totalLost: 7, highestSeq: 99, jitter: 16, lastSR: 5, delaySinceLastSR: 6 });
    const bye = Buffer.from([0x81, 203, 0, 1, 0x22, 0x22, 0x22, 0x22]);
    expect(readCompound(Buffer.concat([sr, aboutSomeoneElse, aboutUs, buildSDES(BOTS, 'bot'), bye]), OURS)).toEqual({
      ok: true,
      value: {
        senderSsrc: BOTS,
        srNtpMiddle: 0x56789abc,
        block: { ssrc: OURS, fractionLost: 64, cumulativeLost: 7, extendedHighestSeq: 99, jitter: 16, lastSr: 5, delaySinceLastSr: 6 },
        bye: true,
      },
    });
  });

  it.each([
    ['a short datagram', Buffer.from([0x80, 200, 0, 0])],
    ['a length past the datagram', Buffer.from([0x80, 201, 0, 9, 0, 0, 0, 1])],
    ['version 1 in a later packet', Buffer.concat([Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]), Buffer.from([0x40, 202, 0, 0])])],
    ['RTP', Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1])],
  ])('refuses %s, never throwing', (_name, buf) => {
    const r = readCompound(buf, OURS);
    expect(r.ok).toBe(false);
  });

  it("takes a lone APP packet (baresip's PING) or SDES as RTCP with nothing in it for us, not as an error", () => {
    const ping = Buffer.from('80cc0003e26458ea50494e47504f4e47', 'hex');
    expect(readCompound(ping, OURS)).toEqual({ ok: true, value: { senderSsrc: 0xe26458ea, bye: false } });
    expect(readCompound(buildSDES(BOTS, 'bot'), OURS)).toEqual({ ok: true, value: { senderSsrc: BOTS, bye: false } });
  });

  it('keeps NTP time on the wallclock, and its middle bits as LSR wants them', () => {
    const t = ntpNow();
    expect(Math.abs(t.seconds - (Date.now() / 1000 + 2_208_988_800))).toBeLessThan(2);
    expect(ntpMiddle({ seconds: 0x12345678, fraction: 0x9abcdef0 })).toBe(0x56789abc);
  });
});

describe('the report interval (RFC 3550 §6.3.1, A.7)', () => {
  const call: IntervalInputs = { members: 2, senders: 2, rtcpBandwidth: 500, weSent: true, avgRtcpSize: 120, initial: false, random: 0.5 };

  it('is the 5 s minimum for a call, 2.5 s before the first report, divided by e − 3/2', () => {
    expect(rtcpIntervalMs(call)).toBeCloseTo(5000 / (Math.E - 1.5), 6);
    expect(rtcpIntervalMs({ ...call, initial: true })).toBeCloseTo(2500 / (Math.E - 1.5), 6);
  });

  it('spreads over [0.5, 1.5] of it, so that reports do not synchronise', () => {
    expect(rtcpIntervalMs({ ...call, random: 0 })).toBeCloseTo(2500 / (Math.E - 1.5), 6);
    expect(rtcpIntervalMs({ ...call, random: 0.999999 })).toBeCloseTo(7500 / (Math.E - 1.5), 0);
  });

  it('grows with the members when the bandwidth share is the limit, a quarter of it for few senders', () => {
    const big: IntervalInputs = { ...call, members: 1000, senders: 2, avgRtcpSize: 100, random: 0.5 };
    // receivers: 998 members share three quarters of 500 B/s
    expect(rtcpIntervalMs({ ...big, weSent: false })).toBeCloseTo(((998 * 100) / 375 / (Math.E - 1.5)) * 1000, 3);
    // senders: 2 share a quarter
    expect(rtcpIntervalMs(big)).toBeCloseTo(5000 / (Math.E - 1.5), 6);
  });
});

/** A stand-in RTP session: what it has sent, what it has received from the bot, and the reports it was given. */
function reporterWith(opts: { random?: number } = {}) {
  const sent = { packetCount: 0, octetCount: 0, rtpTimestamp: 1000 };
  let received: ReceivedStream | undefined;
  const out: Buffer[] = [];
  const reporter = new RtcpReporter(
    OURS,
    { sent: () => ({ ...sent }), received: () => received },
    (pkt) => out.push(pkt) > 0,
    () => opts.random ?? 0.5,
  );
  const frames = (n: number): void => {
    for (let i = 0; i < n; i++) reporter.onFrame();
  };
  return {
    reporter,
    out,
    frames,
    send: (packets: number) => {
      sent.packetCount += packets;
      sent.octetCount += packets * 160;
      sent.rtpTimestamp += packets * 160;
    },
    receive: (r: ReceivedStream) => {
      received = r;
    },
  };
}

describe('RtcpReporter', () => {
  it('sends its first report after the initial interval counted in clock frames, then every interval', () => {
    const { out, frames } = reporterWith();
    frames(102);
    expect(out).toHaveLength(0);
    frames(1); // 2500 / 1.218 ms = 102.6 frames of 20 ms → 103
    expect(out).toHaveLength(1);
    frames(204);
    expect(out).toHaveLength(1);
    frames(1); // 5000 / 1.218 ms = 205.2 → 205
    expect(out).toHaveLength(2);
  });

  it('sends an SR while we send, an RR when we have not for two intervals; a block only for a bot that sent since the last', () => {
    const { out, frames, send, receive } = reporterWith();
    send(100);
    frames(103);
    expect(parseRTCPCompound(out[0]!).map((p) => p.name)).toEqual(['SR', 'SDES']);
    expect(parseRTCPCompound(out[0]!)[0]).toMatchObject({ packetCount: 100, octetCount: 16000, rtpTimestamp: 1000 + 16000, reports: [] });

    receive({ ssrc: BOTS, extendedHighestSeq: 1099, expected: 100, received: 90, cumulativeLost: 10, jitter: 24 });
    frames(205);
    const [sr] = parseRTCPCompound(out[1]!);
    expect(sr!.name).toBe('SR'); // still within two intervals of our last packet
    expect(sr!.reports).toEqual([{ mediaSsrc: BOTS, fractionLost: 25, totalLost: 10, highestSeq: 1099, jitter: 24, lastSR: 0, delaySinceLastSR: 0 }]);

    frames(205); // we sent nothing since the report before last, the bot nothing since the last: RR, no block
    // (types, not names: rtp-packet names no RR shorter than one block)
    expect(parseRTCPCompound(out[2]!).map((p) => [p.type, p.reports?.length ?? 0])).toEqual([[201, 0], [202, 0]]);
    receive({ ssrc: BOTS, extendedHighestSeq: 1199, expected: 200, received: 190, cumulativeLost: 10, jitter: 8 });
    frames(205);
    // 100 expected, 100 received since the last block: nothing lost in the interval
    expect(parseRTCPCompound(out[3]!)[0]!.reports).toEqual([{ mediaSsrc: BOTS, fractionLost: 0, totalLost: 10, highestSeq: 1199, jitter: 8, lastSR: 0, delaySinceLastSR: 0 }]);
  });

  it("echoes the bot's last SR as LSR with the delay since (DLSR), and reads a round trip from the bot's echo of ours", async () => {
    const { reporter, out, frames, send, receive } = reporterWith();
    const botSr = buildSR({ ssrc: BOTS, ntpTimestamp: [0x00011234, 0x56780000], rtpTimestamp: 0, packetCount: 1, octetCount: 160 });
    expect(reporter.take(Buffer.concat([botSr, buildSDES(BOTS, 'bot')]))).toMatchObject({ ok: true, value: { srNtpMiddle: 0x12345678 } });
    receive({ ssrc: BOTS, extendedHighestSeq: 1, expected: 1, received: 1, cumulativeLost: 0, jitter: 0 });
    send(10);
    await new Promise((r) => setTimeout(r, 50));
    frames(103);
    const block = parseRTCPCompound(out[0]!)[0]!.reports![0]!;
    expect(block.lastSR).toBe(0x12345678);
    expect(block.delaySinceLastSR / 65536).toBeGreaterThanOrEqual(0.045);
    expect(block.delaySinceLastSR / 65536).toBeLessThan(1);

    // the bot holds our SR 0.1 s (DLSR) and its report comes back 0.15 s after ours left: 50 ms on the way
    const ourSr = parseRTCPCompound(out[0]!)[0]!;
    const lsr = ntpMiddle({ seconds: ourSr.ntpTimestampMsw!, fraction: ourSr.ntpTimestampLsw! });
    await new Promise((r) => setTimeout(r, 150));
    const echo = buildRR({ ssrc: BOTS, mediaSsrc: OURS, fractionLost: 128, totalLost: 5, highestSeq: 10, jitter: 80, lastSR: lsr, delaySinceLastSR: 0.1 * 65536 });
    reporter.take(Buffer.concat([echo, buildSDES(BOTS, 'bot')]));
    const bot = reporter.stats.bot!;
    expect(bot).toMatchObject({ fractionLost: 0.5, cumulativeLost: 5, jitterMs: 10 });
    expect(bot.rttMs).toBeGreaterThanOrEqual(45);
    expect(bot.rttMs).toBeLessThan(400);
    expect(bot.maxRttMs).toBe(bot.rttMs);
  });

  it('counts what it could not read and what was refused before, and ends with a BYE', () => {
    const { reporter, out } = reporterWith();
    expect(reporter.take(Buffer.from('not rtcp at all'))).toMatchObject({ ok: false });
    reporter.dropped();
    reporter.bye();
    expect(parseRTCPCompound(out[0]!).map((p) => p.type)).toEqual([201, 202, 203]);
    expect(reporter.stats).toEqual({ sent: 1, received: 0, dropped: 2 });
  });
});
