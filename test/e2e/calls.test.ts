import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl, UpgradeRefusedError } from '../support/fake-talkdesk.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, EXAMPLE_BOT, packetRate, splitBotAudio } from '../support/talkdesk-call.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Real calls: the plugin in-process, a sipp bot over UDP on loopback, a fake Talkdesk client over a real WebSocket.
const bot = botPorts(0);

const startGateway = gatewayPerTest();

async function expectLegReleased(gw: Gateway): Promise<void> {
  await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);
  expect(gw.app.ports.inUse).toBe(0);
}

describe('a Talkdesk stream becomes a SIP call to the bot', () => {
  it('bot plays TTS, sends a digit and hangs up with escalation headers → stop{escalate, billing}', async () => {
    const sipp = await startSippBot({ scenario: 'uas_escalate.xml', ...bot, rtpEcho: true });
    const gateway = await startGateway();
    const td = await dialGateway(gateway.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

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
    // the request-URI came from sipuri, and the Talkdesk ids travelled as the configured SIP headers
    expect(result.messages).toContain('INVITE sip:+17345551234@127.0.0.1:5070;transport=udp SIP/2.0');
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
    expect(audio.echoed.length).toBeGreaterThan(200);
    const rate = packetRate(audio.echoed);
    expect(rate).toBeGreaterThan(48);
    expect(rate).toBeLessThan(52);
    // the drain mark went out before stop, and the bot's RFC 4733 digit was recognised
    const events = td.received.map((r) => r.msg.event);
    expect(events.lastIndexOf('mark')).toBeLessThan(events.indexOf('stop'));
    expect(linesWith(gateway.logs, 'dtmf from bot (RFC 4733)').map((l) => l.digit)).toEqual(['1']);
    await td.closed;
    await expectLegReleased(gateway);
  });

  it('bot hangs up with a plain BYE → stop{ok}', async () => {
    const sipp = await startSippBot({ scenario: 'uas_ok.xml', ...bot });
    const gateway = await startGateway();
    const td = await dialGateway(gateway.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(20_000);
    expect(stop.stop).toMatchObject({ command: 'ok', ringGroup: null });
    expectSippSuccess(await sipp.done);
    expect(splitBotAudio(td.received, sipp.ttsUlaw).ttsFramesInOrder).toBe(sipp.ttsUlaw.length / 160);
    await td.closed;
    await expectLegReleased(gateway);
  });

  it('bot answers 486 → stop{error} at once; behind NAT the INVITE advertises the configured addresses', async () => {
    const sipp = await startSippBot({ scenario: 'uas_busy.xml', ...bot });
    const gateway = await startGateway({ SIP_ADVERTISED_ADDRESS: '127.0.0.2', RTP_ADVERTISED_ADDRESS: '127.0.0.3' });
    const td = await dialGateway(gateway.app.port);
    const t0 = performance.now();

    const { stop, at } = await td.waitForStop(5_000);
    expect(stop.stop).toMatchObject({ command: 'error' });
    expect(at - t0).toBeLessThan(2_000);
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages).toMatch(/^Via: SIP\/2\.0\/UDP 127\.0\.0\.2:\d+;/m);
    expect(result.messages).toMatch(/^Contact: <sip:talkdesk-gw@127\.0\.0\.2:\d+;transport=udp>/m);
    expect(result.messages).toContain('c=IN IP4 127.0.0.3');
    const ended = linesWith(gateway.logs, 'call ended');
    expect(ended.map((l) => l.cause)).toEqual(['sip-486']);
    await td.closed;
    await expectLegReleased(gateway);
  });

  it('bot never answers → stop{error} when INVITE_TIMEOUT_MS runs out, and the INVITE is cancelled', async () => {
    const sipp = await startSippBot({ scenario: 'uas_noanswer.xml', ...bot });
    const gateway = await startGateway({ INVITE_TIMEOUT_MS: '2000' });
    const td = await dialGateway(gateway.app.port);
    const t0 = performance.now();

    const { stop, at } = await td.waitForStop(6_000);
    expect(stop.stop).toMatchObject({ command: 'error' });
    expect(at - t0).toBeGreaterThan(1_900);
    expect(at - t0).toBeLessThan(3_000);
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages).toMatch(/^CANCEL sip:/m);
    expect(linesWith(gateway.logs, 'call ended').map((l) => l.cause)).toEqual(['invite-timeout']);
    await td.closed;
    await expectLegReleased(gateway);
  });

  it('Talkdesk stops mid-call → BYE reaches the bot, and Talkdesk gets no stop back', async () => {
    const sipp = await startSippBot({ scenario: 'uas_wait_bye.xml', ...bot });
    const gateway = await startGateway();
    const td = await dialGateway(gateway.app.port);
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
    await expectLegReleased(gateway);
  });

  it('Talkdesk closes while the bot is ringing → CANCEL', async () => {
    const sipp = await startSippBot({ scenario: 'uas_noanswer.xml', ...bot });
    const gateway = await startGateway();
    const td = await dialGateway(gateway.app.port);
    await expect.poll(() => linesWith(gateway.logs, 'bot ringing').length, { timeout: 5_000 }).toBe(1);

    await td.close(1001);
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages).toMatch(/^CANCEL sip:/m);
    expect(linesWith(gateway.logs, 'call ended').map((l) => l.cause)).toEqual(['talkdesk-closed']);
    await expectLegReleased(gateway);
  });

  it('a bad token is refused with 401 before the upgrade, and no INVITE is sent', async () => {
    const ccai = createSocket('udp4');
    ccai.bind(bot.sipPort, '127.0.0.1');
    await once(ccai, 'listening');
    const datagrams: Buffer[] = [];
    ccai.on('message', (msg) => datagrams.push(msg));
    try {
      const gateway = await startGateway();
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
