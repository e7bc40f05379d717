import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBaresip } from '../support/baresip.js';
import { linesWith } from '../support/gateway.js';
import { botPorts } from '../support/ports.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { requireTool } from '../support/tools.js';
import { gatewayPerTest } from './gateway-per-test.js';

// RTCP against a real SIP user agent with its own RTP stack (baresip 1.0, libre): what RFC 3550 reports the gateway
// sends, baresip reads (its round-trip time can only come from our SR echoed in its reports and our blocks on its
// stream), and what baresip sends, the gateway reads into the call's summary.
const startGateway = gatewayPerTest();
const BOT = botPorts(25);

describe('RTCP with baresip as the bot', () => {
  it('each side reads the other’s reports: baresip its round trip and our loss figures, the gateway its RTT and loss', async () => {
    const tone = join(mkdtempSync(join(tmpdir(), 'baresip-tone-')), 'tone.wav');
    execFileSync(requireTool('sox'), ['-n', '-r', '8000', '-c', '1', '-b', '16', tone, 'synth', '20', 'sine', '440', 'vol', '0.3']);
    const bot = await startBaresip({ sipPort: BOT.sipPort, rtpPorts: [BOT.mediaPort, BOT.mediaPort + 9], audioFile: tone });
    const gw = await startGateway({ CCAI_SIP_PORT: String(BOT.sipPort), RTP_PORT_MIN: '38000', RTP_PORT_MAX: '38098' });
    // baresip answers calls to its account's user
    const td = await dialGateway(gw.app.port, 'bot');
    void td.streamAudio(Buffer.alloc(160 * 50 * 10, 0x31));
    await expect.poll(() => linesWith(gw.logs, 'bot answered').length, { timeout: 5000 }).toBe(1);
    // until baresip has echoed one of our SRs (a round trip), and has had a report of ours after its own first: reports
    // go 1-3 s after the answer, then every 2-6 s each way (RFC 3550 §6.3), so this takes 3-12 s
    const live = (): { sent: number; bot?: { rttMs?: number } } | undefined => [...gw.app.registry.values()][0]?.carried.rtp[0]?.rtcp;
    await expect.poll(() => live()?.bot?.rttMs !== undefined && live()!.sent >= 2, { timeout: 15_000, interval: 200 }).toBe(true);
    td.sendStop();
    await td.closed;

    await expect.poll(() => linesWith(gw.logs, 'call ended').length).toBe(1);
    const rtp = linesWith(gw.logs, 'call ended')[0]!['rtp'] as { packetsSent: number; packetsReceived: number; rtcp: { sent: number; received: number; dropped: number; bot?: Record<string, number> } };
    const { rtcp } = rtp;
    expect(rtcp.sent).toBeGreaterThanOrEqual(2);
    expect(rtcp.received).toBeGreaterThanOrEqual(1);
    expect(rtcp.dropped).toBe(0);
    expect(rtcp.bot).toMatchObject({ fractionLost: 0, cumulativeLost: 0 });
    expect(rtcp.bot!['rttMs']).toBeGreaterThanOrEqual(0);
    expect(rtcp.bot!['rttMs']).toBeLessThan(100); // loopback

    // baresip's own account of the call: the packets each way as we counted them (the last few in flight at the
    // BYE aside), no loss either side (PL=local,remote: the remote figure is what our reports told it), and a delay
    // (DL) it can only have from our reports' LSR and DLSR
    const summary = await bot.summary;
    expect(Math.abs(Number(summary['PR']) - rtp.packetsSent)).toBeLessThanOrEqual(5);
    expect(Math.abs(Number(summary['PS']) - rtp.packetsReceived)).toBeLessThanOrEqual(5);
    expect(rtp.packetsSent).toBeGreaterThan(100);
    expect(summary['PL']).toBe('0,0');
    expect(Number(summary['DL'])).toBeGreaterThan(0);
  });
});
