import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl, UpgradeRefusedError } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { scrape } from '../support/metrics-scrape.js';
import { makeTestPki, type TestPki } from '../support/pki.js';
import { botPorts, type SippPorts } from '../support/ports.js';
import { startSocatTls } from '../support/socat.js';
import { expectSippSuccess, startSippBot, type SippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, EXAMPLE_BOT, packetRate, splitBotAudio } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Real calls: the plugin in-process, a sipp bot on loopback, a fake Talkdesk client over a real WebSocket. Every
// call path of the spine runs over UDP, TCP and TLS. Debian's sipp has no TLS, so for TLS socat terminates it in
// front of sipp on TCP (sip-notes §2.4) and the gateway verifies socat's certificate through CCAI_TLS_CA_FILE.

/** socat's TLS port in front of the TLS bot */
const SOCAT_TLS_PORT = 5172;
/** RTP ports of this file's gateways, apart from the other e2e files that run at the same time */
const RTP_RANGE = { RTP_PORT_MIN: '22000', RTP_PORT_MAX: '22098' };

const startGateway = gatewayPerTest();
let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());

/** How the gateway reaches the bot: what differs between transports, and nothing else. */
interface Transport {
  name: 'udp' | 'tcp' | 'tls';
  /** the sipp bot's own ports */
  bot: SippPorts;
  /** sipp's `-t`: TLS is plain TCP behind socat */
  sipp: 'u1' | 't1';
  /** where the gateway sends its requests: the bot, or socat in front of it */
  ccaiPort: number;
  /** the gateway's settings for this transport; a function, as the certificates exist only once beforeAll ran */
  env(): Record<string, string>;
  /** the bot's Contact, when it is not sipp's own address */
  contact?: string;
  /** starts what stands between the gateway and the bot, once the bot listens */
  front?(): Promise<unknown>;
  /** what the gateway must say at start for this transport */
  announces?: string[];
}

const TLS_BOT = botPorts(3);
const tlsEnvWithoutCa = () => ({ ...RTP_RANGE, CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(SOCAT_TLS_PORT) });
const TRANSPORTS: Transport[] = [
  {
    name: 'udp',
    bot: botPorts(0),
    sipp: 'u1',
    ccaiPort: botPorts(0).sipPort,
    env: () => ({ ...RTP_RANGE, CCAI_SIP_TRANSPORT: 'udp', CCAI_SIP_PORT: String(botPorts(0).sipPort) }),
  },
  {
    name: 'tcp',
    bot: botPorts(2),
    sipp: 't1',
    ccaiPort: botPorts(2).sipPort,
    env: () => ({ ...RTP_RANGE, CCAI_SIP_TRANSPORT: 'tcp', CCAI_SIP_PORT: String(botPorts(2).sipPort) }),
  },
  {
    name: 'tls',
    bot: TLS_BOT,
    sipp: 't1',
    ccaiPort: SOCAT_TLS_PORT,
    env: () => ({ ...tlsEnvWithoutCa(), CCAI_TLS_CA_FILE: pki.caFile }),
    // the bot's Contact is socat's port, so the plugin's ACK and BYE go through socat too (sip-notes §2.4)
    contact: `sip:bot@127.0.0.1:${SOCAT_TLS_PORT};transport=tls`,
    front: () => startSocatTls({ port: SOCAT_TLS_PORT, target: TLS_BOT.sipPort, cert: pki.server }),
    announces: [
      'no SIP_TLS_CERT_FILE/SIP_TLS_KEY_FILE: no SIP TLS listener, so the bot must send its in-dialog requests (its BYE) over the connection we opened',
    ],
  },
];

interface CallSetup {
  t: Transport;
  sipp: SippBot;
  gateway: Gateway;
  /** dialled, `connected` and `start` sent */
  td: FakeTalkdesk;
}

/** One path a call can take; its body runs over every transport. */
interface CallPath {
  title: string;
  /** the bot, from test/sipp */
  scenario: string;
  /** the bot echoes the caller's audio (sipp -rtp_echo) */
  rtpEcho?: boolean;
  /** settings this path needs on top of the transport's */
  env?: Record<string, string>;
  run(call: CallSetup): Promise<void>;
}

const via = (t: Transport) => t.name.toUpperCase();

const CALL_PATHS: CallPath[] = [
  {
    title: 'bot plays TTS, sends a digit and hangs up with escalation headers → stop{escalate, billing}',
    scenario: 'uas_escalate.xml',
    rtpEcho: true,
    async run({ t, sipp, gateway, td }) {
      void td.streamAudio(await speechUlaw(CALLER_TEXT));
      // a Prometheus scrape during the sipp call sees it live and its RTP moving both ways
      await td.waitFor((r) => r.msg.event === 'media', 5_000, 'bot audio');
      await expect.poll(async () => (await scrape(gateway)).value('talkdesk_gw_rtp_packets_total', { direction: 'to_bot' })).toBeGreaterThan(0);
      const during = await scrape(gateway);
      expect(during.value('talkdesk_gw_calls_active')).toBe(1);
      expect(during.value('talkdesk_gw_rtp_packets_total', { direction: 'from_bot' })).toBeGreaterThan(0);

      const { stop } = await td.waitForStop(20_000);
      expect(stop.stop).toMatchObject({
        command: 'escalate',
        ringGroup: 'billing',
        accountSid: 'td-account-1',
        callSid: 'CA-test-call-1',
      });
      expect(stop.streamSid).toBe('MZ18ad3ab5a668481ce02b83e7395059f0');
      const result = await sipp.done;
      expectSippSuccess(result);
      // the request-URI came from sipuri, and the Talkdesk ids travelled as the configured SIP headers; behind socat
      // sipp sees plain TCP, and what the gateway wrote inside TLS
      expect(result.messages).toContain(`INVITE sip:+17345551234@127.0.0.1:${t.ccaiPort};transport=${t.name} SIP/2.0`);
      expect(result.messages).toMatch(new RegExp(`^Via: SIP/2\\.0/${via(t)} 127\\.0\\.0\\.1:\\d+;branch=`, 'm'));
      expect(result.messages).toMatch(new RegExp(`^Contact: <sip:talkdesk-gw@127\\.0\\.0\\.1:\\d+;transport=${t.name}>`, 'm'));
      for (const header of [
        'X-Talkdesk-Call-Sid: CA-test-call-1',
        'X-Talkdesk-Stream-Sid: MZ18ad3ab5a668481ce02b83e7395059f0',
        'X-Talkdesk-Interaction-Id: interaction-42',
        'X-Talkdesk-Account-Sid: td-account-1',
        'X-Kore-Bot-Id: st-00000000-0000-0000-0000-000000000000',
        'X-Kore-Account-Id: 0123456789abcdef01234567',
      ]) {
        expect(result.messages).toContain(header);
      }

      // every TTS frame reached Talkdesk bit-exact and in order
      const audio = splitBotAudio(td.received, sipp.ttsUlaw);
      expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
      // the caller's audio reached the bot (which echoed it) at a steady 50 packets a second, silence filled in
      expect(audio.echoed.length).toBeGreaterThan(100);
      const rate = packetRate(audio.echoed);
      expect(rate).toBeGreaterThan(48);
      expect(rate).toBeLessThan(52);
      // the drain mark went out before stop, and the bot's RFC 4733 digit was recognised
      const events = td.received.map((r) => r.msg.event);
      expect(events.lastIndexOf('mark')).toBeLessThan(events.indexOf('stop'));
      expect(linesWith(gateway.logs, 'dtmf from bot (RFC 4733)').map((l) => l.digit)).toEqual(['1']);
      await expect.poll(() => gateway.app.registry.size).toBe(0);
      const after = await scrape(gateway);
      expect(after.value('talkdesk_gw_calls_total', { outcome: 'escalate', cause: 'bot-escalate' })).toBe(1);
      expect(after.value('talkdesk_gw_rtp_packets_total', { direction: 'to_bot' })).toBeGreaterThan(
        during.value('talkdesk_gw_rtp_packets_total', { direction: 'to_bot' }),
      );
    },
  },
  {
    title: 'bot hangs up with a plain BYE → stop{ok}',
    scenario: 'uas_ok.xml',
    async run({ sipp, td }) {
      void td.streamAudio(await speechUlaw(CALLER_TEXT));

      const { stop } = await td.waitForStop(20_000);
      expect(stop.stop).toMatchObject({ command: 'ok', ringGroup: null });
      expectSippSuccess(await sipp.done);
      expect(splitBotAudio(td.received, sipp.ttsUlaw).ttsFramesInOrder).toBe(sipp.ttsUlaw.length / 160);
    },
  },
  {
    title: 'bot answers 486 → stop{error} at once; behind NAT the INVITE advertises the configured addresses',
    scenario: 'uas_busy.xml',
    env: { SIP_ADVERTISED_ADDRESS: '127.0.0.2', RTP_ADVERTISED_ADDRESS: '127.0.0.3' },
    async run({ t, sipp, gateway, td }) {
      const t0 = performance.now();

      const { stop, at } = await td.waitForStop(5_000);
      expect(stop.stop).toMatchObject({ command: 'error' });
      expect(at - t0).toBeLessThan(2_000);
      const result = await sipp.done;
      expectSippSuccess(result);
      expect(result.messages).toMatch(new RegExp(`^Via: SIP/2\\.0/${via(t)} 127\\.0\\.0\\.2:\\d+;`, 'm'));
      expect(result.messages).toMatch(new RegExp(`^Contact: <sip:talkdesk-gw@127\\.0\\.0\\.2:\\d+;transport=${t.name}>`, 'm'));
      expect(result.messages).toContain('c=IN IP4 127.0.0.3');
      const ended = linesWith(gateway.logs, 'call ended');
      expect(ended.map((l) => l.cause)).toEqual(['sip-486']);
    },
  },
  {
    title: 'bot never answers → stop{error} when INVITE_TIMEOUT_MS runs out, and the INVITE is cancelled',
    scenario: 'uas_noanswer.xml',
    env: { INVITE_TIMEOUT_MS: '1000' },
    async run({ sipp, gateway, td }) {
      const t0 = performance.now();

      const { stop, at } = await td.waitForStop(5_000);
      expect(stop.stop).toMatchObject({ command: 'error' });
      expect(at - t0).toBeGreaterThan(900);
      expect(at - t0).toBeLessThan(2_000);
      const result = await sipp.done;
      expectSippSuccess(result);
      expect(result.messages).toMatch(/^CANCEL sip:/m);
      expect(linesWith(gateway.logs, 'call ended').map((l) => l.cause)).toEqual(['invite-timeout']);
    },
  },
  {
    title: 'Talkdesk stops mid-call → BYE reaches the bot, and Talkdesk gets no stop back',
    scenario: 'uas_wait_bye.xml',
    async run({ sipp, td }) {
      void td.streamAudio(await speechUlaw(CALLER_TEXT));
      await td.waitFor((r) => r.msg.event === 'media', 5_000, 'bot audio');

      td.sendStop();
      const closed = await td.closed;
      expect(closed.code).toBe(1000);
      const result = await sipp.done;
      expectSippSuccess(result);
      expect(result.messages).toMatch(/^BYE sip:/m);
      expect(result.messages).toMatch(/X-Reason: talkdesk-stop/);
      expect(td.received.filter((r) => r.msg.event === 'stop')).toEqual([]);
    },
  },
  {
    title: 'Talkdesk closes while the bot is ringing → CANCEL',
    scenario: 'uas_noanswer.xml',
    async run({ sipp, gateway, td }) {
      await expect.poll(() => linesWith(gateway.logs, 'bot ringing').length, { timeout: 5_000 }).toBe(1);

      await td.close(1001);
      const result = await sipp.done;
      expectSippSuccess(result);
      expect(result.messages).toMatch(/^CANCEL sip:/m);
      expect(linesWith(gateway.logs, 'call ended').map((l) => l.cause)).toEqual(['talkdesk-closed']);
    },
  },
];

async function expectLegReleased(gw: Gateway): Promise<void> {
  await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);
  expect(gw.app.ports.inUse).toBe(0);
}

describe('a Talkdesk stream becomes a SIP call to the bot', () => {
  describe.each(TRANSPORTS.map((t) => [t.name, t] as const))('over %s', (_name, t) => {
    it.each(CALL_PATHS.map((path) => [path.title, path] as const))('%s', async (_title, path) => {
      const sipp = await startSippBot({
        scenario: path.scenario,
        ...t.bot,
        transport: t.sipp,
        rtpEcho: path.rtpEcho === true,
        ...(t.contact === undefined ? {} : { contact: t.contact }),
      });
      await t.front?.();
      const gateway = await startGateway({ ...t.env(), ...path.env });
      for (const line of t.announces ?? []) expect(gateway.logs.map((l) => l.msg)).toContain(line);
      const td = await dialGateway(gateway.app.port);

      await path.run({ t, sipp, gateway, td });

      await td.closed;
      await expectLegReleased(gateway);
      if (t.name !== 'udp') {
        // every request and response of the call (INVITE, ACK, CANCEL, either side's BYE and their answers) shared
        // the one connection the gateway opened, and none of them was cut off
        expect(linesWith(gateway.logs, `SIP ${via(t)} connection opened`)).toHaveLength(1);
        expect(linesWith(gateway.logs, `SIP ${via(t)} connection accepted`)).toEqual([]);
        expect(linesWith(gateway.logs, 'SIP connection lost')).toEqual([]);
      }
    });
  });

  describe('TLS to a CCAI whose certificate the gateway does not trust', () => {
    const tls = TRANSPORTS.find((t) => t.name === 'tls')!;

    it.each([
      ['CCAI_TLS_CA_FILE holds another CA', () => tls.env()],
      ['no CCAI_TLS_CA_FILE (the system CAs only)', tlsEnvWithoutCa],
    ])('%s → stop{error}, cause sip-transport naming the unknown CA and CCAI_TLS_CA_FILE; nothing reaches the bot', async (_name, env) => {
      const sipp = await startSippBot({ scenario: 'uas_noanswer.xml', ...tls.bot, transport: tls.sipp, contact: tls.contact! });
      await startSocatTls({ port: SOCAT_TLS_PORT, target: tls.bot.sipPort, cert: pki.foreign });
      const gateway = await startGateway(env());
      const td = await dialGateway(gateway.app.port);

      const { stop } = await td.waitForStop(5_000);
      expect(stop.stop).toMatchObject({ command: 'error' });
      await td.closed;
      await expect.poll(() => linesWith(gateway.logs, 'call ended').length, { timeout: 5_000 }).toBe(1);
      const [ended] = linesWith(gateway.logs, 'call ended');
      expect(ended).toMatchObject({ outcome: 'error', cause: 'sip-transport' });
      expect(ended?.detail).toBe(
        `could not send INVITE: TLS connection to 127.0.0.1:${SOCAT_TLS_PORT} failed: the CCAI server certificate is signed by a CA we do not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); set CCAI_TLS_CA_FILE to the CA bundle that signs it`,
      );
      await expectLegReleased(gateway);
      // socat refused the handshake before dialling the bot: sipp saw no message at all
      const result = await sipp.stop();
      expect(result.messages).toBe('');
      await rm(result.runDir, { recursive: true, force: true });
    });
  });

  it('a bad token is refused with 401 before the upgrade, and no INVITE is sent', async () => {
    const bot = botPorts(0);
    const ccai = createSocket('udp4');
    ccai.bind(bot.sipPort, '127.0.0.1');
    await once(ccai, 'listening');
    const datagrams: Buffer[] = [];
    ccai.on('message', (msg) => datagrams.push(msg));
    try {
      const gateway = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort) });
      const url = talkdeskUrl({
        port: gateway.app.port,
        sipuri: '+17345551234',
        token: makeToken(EXAMPLE_BOT.clientId, 'not-the-secret'),
        botId: EXAMPLE_BOT.botId,
        accountId: 'acc',
      });
      const refused = await FakeTalkdesk.connect(url).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(UpgradeRefusedError);
      expect((refused as UpgradeRefusedError).status).toBe(401);
      await sleep(300);
      expect(datagrams).toEqual([]);
      expect(gateway.app.registry.size).toBe(0);
      expect(linesWith(gateway.logs, 'upgrade refused')).toHaveLength(1);
    } finally {
      ccai.close();
    }
  });
});
