import { createSocket } from 'node:dgram';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { SipMessageView } from '../../../../plugin/sip/backend.js';
import { botPorts } from '../../../support/ports.js';
import { expectSippSuccess, startSippBot } from '../../../support/sipp.js';
import { loopbackBackend, sdpOffer } from './backend-fixture.js';
import { testLog } from './fake-uas.js';

const bot = botPorts(8);
/** μ-law is 8 bytes per ms */
const ULAW_BYTES_PER_MS = 8;
/** Beyond the bot's speech: the 500 ms DTMF pause, the BYE and scheduling slack. */
const BYE_SLACK_MS = 5_000;

/** A UDP socket standing in for the plugin's RTP port: sipp plays its pcaps to the address in our SDP offer. */
async function rtpSink(): Promise<{ port: number; packets: () => number }> {
  const socket = createSocket('udp4');
  let packets = 0;
  socket.on('message', () => packets++);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, packets: () => packets };
}

describe('EmbeddedSipBackend against sipp (Debian sip-tester)', () => {
  it('places a call to the escalating sipp bot and reports its BYE with X-Escalate', async () => {
    const rtp = await rtpSink();
    const sipp = await startSippBot({ scenario: 'uas_escalate.xml', ...bot });
    const backend = loopbackBackend({ timers: { T1: 50 } });
    onTestFinished(() => backend.stop());
    await backend.start();

    const onBye = vi.fn<(bye: SipMessageView) => void>();
    const onProgress = vi.fn<(status: number) => void>();
    const outgoing = backend.invite({
      requestUri: `sip:+17345551234@127.0.0.1:${bot.sipPort};transport=udp`,
      fromUser: 'talkdesk',
      headers: { 'X-Talkdesk-Call-Sid': 'CA-sipp' },
      sdp: sdpOffer(rtp.port),
      log: testLog,
      delegate: { onBye, onProgress, onRemoteSdp: vi.fn(), onRefer: vi.fn() },
    });
    const leg = await outgoing.answered;
    expect(leg.remoteSdp).toContain(`m=audio ${bot.mediaPort} RTP/AVP 0 101`);
    expect(onProgress).toHaveBeenCalledWith(180);

    // the bot speaks, sends a DTMF digit, then hangs up
    const speechMs = sipp.ttsUlaw.length / ULAW_BYTES_PER_MS;
    await vi.waitFor(() => expect(onBye).toHaveBeenCalledTimes(1), { timeout: speechMs + BYE_SLACK_MS, interval: 50 });
    const bye = onBye.mock.calls[0]![0];
    expect(bye.get('x-escalate')).toBe('true');
    expect(JSON.parse(bye.get('x-escalation-data')!)).toMatchObject({ reason: 'agent_requested', queue: 'billing' });
    // sipp took our SDP offer's address: its media reached the socket behind it
    expect(rtp.packets()).toBeGreaterThan(0);

    // sipp exits 0 only if our 200 to its BYE arrived, after its timewait
    expectSippSuccess(await sipp.done);
    await vi.waitFor(() => expect(backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 }), { timeout: 5000 });
  });
});
