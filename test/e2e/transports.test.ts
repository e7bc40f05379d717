import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { makeTestPki, type TestPki } from '../support/pki.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, splitBotAudio } from '../support/talkdesk-call.js';
import { requireTool } from '../support/tools.js';
import { gatewayPerTest } from './gateway-per-test.js';

// The spine's calls over TCP and TLS. Debian's sipp has no TLS, so for TLS socat terminates it in front of sipp on
// TCP (sip-notes §2.4) and the gateway verifies socat's certificate through CCAI_TLS_CA_FILE.
const bot = botPorts(2);
/** socat's TLS port in front of the bot */
const SOCAT_TLS_PORT = 5172;
/** RTP ports of their own, apart from the other e2e files that may run at the same time */
const RTP_RANGE = { RTP_PORT_MIN: '22000', RTP_PORT_MAX: '22098' };

const startGateway = gatewayPerTest();
let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki.remove());

async function expectLegReleased(gw: Gateway): Promise<void> {
  await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);
  expect(gw.app.ports.inUse).toBe(0);
}

/** socat terminating TLS on SOCAT_TLS_PORT with the test server certificate (IP SAN 127.0.0.1), plain TCP to the bot */
async function startSocat(): Promise<void> {
  const socat = spawn(
    requireTool('socat'),
    [
      `openssl-listen:${SOCAT_TLS_PORT},reuseaddr,fork,cert=${pki.server.cert},key=${pki.server.key},verify=0`,
      `tcp:127.0.0.1:${bot.sipPort}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  socat.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => socat.once('close', () => resolve()));
  onTestFinished(async () => {
    socat.kill('SIGTERM');
    await exited;
  });
  const deadline = performance.now() + 5_000;
  while (!(await listening(SOCAT_TLS_PORT))) {
    if (socat.exitCode !== null || performance.now() > deadline) throw new Error(`socat did not listen on ${SOCAT_TLS_PORT}: ${stderr}`);
    await sleep(20);
  }
}

/** a TCP socket in LISTEN (0A) on `port`, read from /proc: probing with a connection would make socat dial the bot */
async function listening(port: number): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await readFile('/proc/net/tcp', 'utf8');
  return table.split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1]?.endsWith(hex) === true && f[3] === '0A';
  });
}

describe('calls over TCP and TLS', () => {
  it('TCP: the escalating bot → stop{escalate, billing}, its TTS bit-exact, every request on one connection', async () => {
    const sipp = await startSippBot({ scenario: 'uas_escalate.xml', ...bot, transport: 't1', rtpEcho: true });
    const gateway = await startGateway({ ...RTP_RANGE, CCAI_SIP_TRANSPORT: 'tcp', CCAI_SIP_PORT: String(bot.sipPort) });
    const td = await dialGateway(gateway.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(20_000);
    expect(stop.stop).toMatchObject({ command: 'escalate', ringGroup: 'billing' });
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages).toContain(`INVITE sip:+17345551234@127.0.0.1:${bot.sipPort};transport=tcp SIP/2.0`);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;branch=/m);
    expect(result.messages).toMatch(/^Contact: <sip:talkdesk-gw@127\.0\.0\.1:\d+;transport=tcp>/m);
    // INVITE, ACK, the bot's BYE and our 200 shared the one connection the gateway opened
    expect(linesWith(gateway.logs, 'SIP TCP connection opened')).toHaveLength(1);
    expect(linesWith(gateway.logs, 'SIP TCP connection accepted')).toEqual([]);
    const audio = splitBotAudio(td.received, sipp.ttsUlaw);
    expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
    expect(linesWith(gateway.logs, 'dtmf from bot (RFC 4733)').map((l) => l.digit)).toEqual(['1']);
    await td.closed;
    await expectLegReleased(gateway);
  });

  describe('TLS through socat, the gateway verifying its certificate', () => {
    const tlsGateway = () =>
      startGateway({
        ...RTP_RANGE,
        CCAI_SIP_TRANSPORT: 'tls',
        CCAI_SIP_PORT: String(SOCAT_TLS_PORT),
        CCAI_TLS_CA_FILE: pki.caFile,
      });
    /** the bot's Contact is socat's port, so the plugin's ACK and BYE go through socat too (sip-notes §2.4) */
    const botBehindSocat = (scenario: string, rtpEcho: boolean) =>
      startSippBot({
        scenario,
        ...bot,
        transport: 't1',
        rtpEcho,
        contact: `sip:bot@127.0.0.1:${SOCAT_TLS_PORT};transport=tls`,
      });

    it('the escalating bot → stop{escalate, billing}, its TTS bit-exact', async () => {
      const sipp = await botBehindSocat('uas_escalate.xml', true);
      await startSocat();
      const gateway = await tlsGateway();
      const td = await dialGateway(gateway.app.port);
      void td.streamAudio(await speechUlaw(CALLER_TEXT));

      const { stop } = await td.waitForStop(20_000);
      expect(stop.stop).toMatchObject({ command: 'escalate', ringGroup: 'billing' });
      const result = await sipp.done;
      expectSippSuccess(result);
      // sipp sees plain TCP behind socat, and what the gateway wrote inside TLS
      expect(result.messages).toContain(`INVITE sip:+17345551234@127.0.0.1:${SOCAT_TLS_PORT};transport=tls SIP/2.0`);
      expect(result.messages).toMatch(/^Via: SIP\/2\.0\/TLS 127\.0\.0\.1:\d+;branch=/m);
      expect(result.messages).toMatch(/^Contact: <sip:talkdesk-gw@127\.0\.0\.1:\d+;transport=tls>/m);
      const audio = splitBotAudio(td.received, sipp.ttsUlaw);
      expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
      expect(linesWith(gateway.logs, 'SIP TLS connection opened')).toHaveLength(1);
      expect(linesWith(gateway.logs, 'SIP connection lost')).toEqual([]);
      await td.closed;
      await expectLegReleased(gateway);
    });

    it('a plain BYE → stop{ok}; without SIP_TLS_CERT_FILE the gateway says the BYE must reuse its connection', async () => {
      const sipp = await botBehindSocat('uas_ok.xml', false);
      await startSocat();
      const gateway = await tlsGateway();
      expect(gateway.logs.map((l) => l.msg)).toContain(
        'no SIP_TLS_CERT_FILE/SIP_TLS_KEY_FILE: no SIP TLS listener, so the bot must send its in-dialog requests (its BYE) over the connection we opened',
      );
      const td = await dialGateway(gateway.app.port);
      void td.streamAudio(await speechUlaw(CALLER_TEXT));

      const { stop } = await td.waitForStop(20_000);
      expect(stop.stop).toMatchObject({ command: 'ok', ringGroup: null });
      expectSippSuccess(await sipp.done);
      expect(splitBotAudio(td.received, sipp.ttsUlaw).ttsFramesInOrder).toBe(sipp.ttsUlaw.length / 160);
      await td.closed;
      await expectLegReleased(gateway);
    });
  });
});
