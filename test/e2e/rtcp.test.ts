import { buildRR, buildSDES, buildSR, parseRTCPCompound } from 'rtp-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { ntpMiddle, ntpNow } from '../../media/rtcp.js';
import { linesWith } from '../support/gateway.js';
import { scrape } from '../support/metrics-scrape.js';
import { NodeBot, offeredPort } from '../support/node-bot.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// RTCP (RFC 3550 §6) between the gateway and a bot: the gateway's reports seen at the bot, on the port its answer
// names or muxed on RTP, and the bot's reports in the call's summary and the metrics.
const startGateway = gatewayPerTest();
const RTP_RANGE = { RTP_PORT_MIN: '35000', RTP_PORT_MAX: '35098' };
const BOT_SSRC = 0xb0b;

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function answeredCall(rtcpMux: boolean) {
  const bot = await NodeBot.start();
  cleanup.push(() => bot.close());
  const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort) });
  const td = await dialGateway(gw.app.port);
  const invite = await bot.uas.next('INVITE', 5000);
  // our offer says it can mux (RFC 5761)
  expect(invite.message.sip.body).toMatch(/\r\na=rtcp-mux\r\n/);
  bot.answer(invite, { rtcpMux });
  await bot.uas.next('ACK');
  const gatewayPort = offeredPort(invite);
  void td.streamAudio(Buffer.alloc(160 * 50 * 8, 0x31));
  void bot.sendAudio(gatewayPort, 50 * 6, 0x42, BOT_SSRC);
  return { bot, gw, td, gatewayPort };
}

async function hangUp({ bot, td }: Awaited<ReturnType<typeof answeredCall>>): Promise<void> {
  td.sendStop();
  const bye = await bot.uas.next('BYE', 5000);
  bot.uas.reply(bye, 200, 'OK');
  await td.closed;
}

const types = (pkt: Buffer): number[] => parseRTCPCompound(pkt).map((p) => p.type);

describe('RTCP between the gateway and the bot', () => {
  it("reports reach the bot's a=rtcp port (SR with a block on its stream, CNAME, BYE at hang-up); its reports reach the summary and metrics", async () => {
    const call = await answeredCall(false);
    const { bot, gw, gatewayPort } = call;

    // the bot's SR, sent to the gateway's RTCP port (its RTP port + 1, RFC 3550 §11)
    await expect.poll(() => bot.rtp.length, { timeout: 3000 }).toBeGreaterThan(10);
    const botNtp = ntpNow();
    const botSr = buildSR({ ssrc: BOT_SSRC, ntpTimestamp: [botNtp.seconds, botNtp.fraction], rtpTimestamp: 0, packetCount: 10, octetCount: 1600 });
    await bot.sendRtcp(Buffer.concat([botSr, buildSDES(BOT_SSRC, 'bot@test')]), gatewayPort + 1);

    // the gateway's first report: 1.0-3.1 s after the answer (RFC 3550 §6.3's initial interval)
    await expect.poll(() => bot.rtcp.length, { timeout: 4000 }).toBeGreaterThan(0);
    const first = bot.rtcp[0]!;
    expect(first).toMatchObject({ on: 'rtcp', from: gatewayPort + 1 });
    const [sr, sdes] = parseRTCPCompound(first.pkt);
    expect(sr).toMatchObject({ name: 'SR', ssrc: bot.rtp[0]!.ssrc });
    expect(sdes!.cname).toMatch(/\S/);
    const block = sr!.reports!.find((r) => r.mediaSsrc === BOT_SSRC)!;
    expect(block).toMatchObject({ fractionLost: 0, totalLost: 0, lastSR: ntpMiddle(botNtp) });

    // the bot's RR: 3 of the gateway's packets lost, 2 ms jitter, echoing its SR with the delay since (DLSR)
    const ourSr = ntpMiddle({ seconds: sr!.ntpTimestampMsw!, fraction: sr!.ntpTimestampLsw! });
    const heldMs = 30;
    await new Promise((r) => setTimeout(r, heldMs));
    const rr = buildRR({ ssrc: BOT_SSRC, mediaSsrc: sr!.ssrc!, fractionLost: 0, totalLost: 3, highestSeq: 1, jitter: 16, lastSR: ourSr, delaySinceLastSR: Math.round((heldMs / 1000) * 65536) });
    await bot.sendRtcp(Buffer.concat([rr, buildSDES(BOT_SSRC, 'bot@test')]), gatewayPort + 1);
    await new Promise((r) => setTimeout(r, 200));

    const sentBefore = bot.rtcp.length;
    await hangUp(call);
    // RFC 3550 §6.6: a BYE, in a compound packet of its own, when the gateway leaves
    await expect.poll(() => bot.rtcp.length, { timeout: 2000 }).toBe(sentBefore + 1);
    expect(types(bot.rtcp.at(-1)!.pkt)).toEqual([200, 202, 203]);

    await expect.poll(() => linesWith(gw.logs, 'call ended').length).toBe(1);
    const summary = linesWith(gw.logs, 'call ended')[0]!;
    expect(summary).toMatchObject({ rtp: { rtcp: { sent: sentBefore + 1, received: 2, dropped: 0, bot: { fractionLost: 0, cumulativeLost: 3, jitterMs: 2 } } } });
    const rttMs = (summary['rtp'] as { rtcp: { bot: { rttMs: number } } }).rtcp.bot.rttMs;
    expect(rttMs).toBeGreaterThanOrEqual(0);
    expect(rttMs).toBeLessThan(250); // loopback; the bot held the SR 30 ms and said so

    const m = await scrape(gw);
    expect(m.value('talkdesk_gw_rtp_lost_packets_total', { direction: 'to_bot' })).toBe(3);
    expect(m.value('talkdesk_gw_rtcp_packets_total', { direction: 'to_bot' })).toBe(sentBefore + 1);
    expect(m.value('talkdesk_gw_rtcp_packets_total', { direction: 'from_bot' })).toBe(2);
    expect(m.value('talkdesk_gw_call_rtt_seconds_count')).toBe(1);
    expect(m.value('talkdesk_gw_call_bot_reported_jitter_seconds_count')).toBe(1);
  });

  it('with a=rtcp-mux in the answer, reports go from the gateway’s RTP port to the bot’s, and the bot’s are read there', async () => {
    const call = await answeredCall(true);
    const { bot, gw, gatewayPort } = call;
    await expect.poll(() => bot.rtp.length, { timeout: 3000 }).toBeGreaterThan(10);
    const rr = buildRR({ ssrc: BOT_SSRC, mediaSsrc: bot.rtp[0]!.ssrc, fractionLost: 0, totalLost: 1, highestSeq: 1, jitter: 8, lastSR: 0, delaySinceLastSR: 0 });
    await bot.sendRtcp(Buffer.concat([rr, buildSDES(BOT_SSRC, 'bot@test')]), gatewayPort, 'rtp');
    await hangUp(call);
    await expect.poll(() => bot.rtcp.some((r) => types(r.pkt).includes(203)), { timeout: 2000 }).toBe(true);
    expect(bot.rtcp.every((r) => r.on === 'rtp' && r.from === gatewayPort)).toBe(true);

    await expect.poll(() => linesWith(gw.logs, 'call ended').length).toBe(1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ rtp: { droppedUnknownPt: 0, rtcp: { received: 1, bot: { cumulativeLost: 1, jitterMs: 1 } } } });
  });
});
