import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it, onTestFinished } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { linesWith } from '../support/gateway.js';
import { startKamailio } from '../support/kamailio.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, splitBotAudio } from '../support/talkdesk-call.js';
import { stopOnceAnswered } from './call-steps.js';
import { gatewayPerTest } from './gateway-per-test.js';

// A real SIP proxy between the gateway and the bot: Debian's kamailio, Record-Routing (test/kamailio/proxy.cfg), as a
// carrier SBC or CCAI's own edge would be. The gateway sends everything to the proxy (CCAI_SIP_HOST/PORT), in-dialog
// requests along the Record-Route set; the bot sends its own through the proxy too (sipp's [routes]).

const bot = botPorts(14);
const PROXY_PORT = 5110;
const startGateway = gatewayPerTest();

describe.each(['udp', 'tcp'] as const)('through a Record-Routing proxy (kamailio) over %s', (transport) => {
  const sippTransport = transport === 'udp' ? 'u1' : 't1';
  const gatewayEnv = {
    CCAI_SIP_PORT: String(PROXY_PORT),
    CCAI_SIP_TRANSPORT: transport,
    RTP_PORT_MIN: '33600',
    RTP_PORT_MAX: '33698',
  };

  /** The bot in `scenario`, kamailio in front of it, a gateway that sends to kamailio, and a Talkdesk stream dialled in. */
  async function callThroughProxy(scenario: string, opts: { extraArgs?: string[]; env?: Record<string, string>; callSid?: string } = {}) {
    const sipp = await startSippBot({ scenario, ...bot, transport: sippTransport, ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}) });
    await startKamailio({ port: PROXY_PORT, botPort: bot.sipPort });
    const gw = await startGateway({ ...gatewayEnv, ...opts.env });
    const td = await dialGateway(gw.app.port, '+17345551234', opts.callSid === undefined ? {} : { callSid: opts.callSid });
    return { sipp, gw, td };
  }

  it('the bot speaks and hangs up: its BYE comes through the proxy, Talkdesk gets stop{ok}', async () => {
    const { sipp, gw, td } = await callThroughProxy('uas_ok.xml');
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(15_000);
    expect(stop.stop).toMatchObject({ command: 'ok' });
    const result = await sipp.done;
    expectSippSuccess(result);
    // the proxy recorded its route, and the bot's BYE followed it
    expect(result.messages).toMatch(new RegExp(`^Record-Route: <sip:127\\.0\\.0\\.1:${PROXY_PORT};[^>]*lr[^>]*>`, 'm'));
    expect(result.messages).toMatch(new RegExp(`^Route: <sip:127\\.0\\.0\\.1:${PROXY_PORT};[^>]*lr[^>]*>`, 'm'));
    expect(splitBotAudio(td.received, sipp.ttsUlaw).ttsFramesInOrder).toBe(sipp.ttsUlaw.length / 160);
    await td.closed;
    await expect.poll(() => linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['bot-bye']);
  });

  it('the bot escalates: its BYE with escalation headers comes through the proxy, Talkdesk gets stop{escalate}', async () => {
    const { sipp, td } = await callThroughProxy('uas_escalate.xml');
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(15_000);
    expect(stop.stop).toMatchObject({ command: 'escalate', ringGroup: 'billing' });
    expectSippSuccess(await sipp.done);
  });

  it('Talkdesk stops: our BYE follows the Record-Route set through the proxy to the bot', async () => {
    const { sipp, gw, td } = await callThroughProxy('uas_wait_bye.xml');

    const result = await stopOnceAnswered(gw, td, sipp);
    expect(result.messages).toMatch(/^BYE sip:/m);
    // loose routing (RFC 3261 §16.12): our BYE carried the proxy's route, the proxy took it off before the bot
    expect(linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['talkdesk-stop']);
  });

  it('Talkdesk closes while the bot rings: the CANCEL goes through the proxy, and the 487 comes back with its Via stack', async () => {
    const { sipp, gw, td } = await callThroughProxy('uas_noanswer.xml');
    await expect.poll(() => linesWith(gw.logs, 'bot ringing').length, { timeout: 5_000 }).toBe(1);

    await td.close(1001);
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages).toMatch(/^CANCEL sip:/m);
    // the 487 carried the INVITE's two Vias, the proxy's and ours: the gateway took it (nothing dropped as missing a Via)
    expect(result.messages).toMatch(/^SIP\/2\.0 487 Request Terminated\r?\nVia: [^\r\n]*\r?\nVia: /m);
    expect(linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['talkdesk-closed']);
    expect(linesWith(gw.logs, 'malformed SIP message dropped')).toEqual([]);
  });

  it("the bot's re-INVITE comes through the proxy along the route set, is answered with our SDP and moves our RTP", async () => {
    const moved = createSocket('udp4');
    moved.bind(0, '127.0.0.1');
    await once(moved, 'listening');
    onTestFinished(() => void moved.close());
    const { sipp, gw, td } = await callThroughProxy('uas_reinvite.xml', { extraArgs: ['-key', 'new_rtp_port', String(moved.address().port)] });
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(20_000);
    expect(stop.stop).toMatchObject({ command: 'ok' });
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(linesWith(gw.logs, 'bot moved its media').map((l) => l.remote)).toEqual([`127.0.0.1:${moved.address().port}`]);
    // sipp's re-INVITE and BYE carried the proxy's route (they reach us only through it)
    expect(result.messages.match(new RegExp(`^Route: <sip:127\\.0\\.0\\.1:${PROXY_PORT};`, 'gm'))?.length).toBeGreaterThanOrEqual(2);
  });

  it.each([
    ['the right password: the INVITE goes again with Proxy-Authorization that kamailio accepts, and the call is up', 's3cret', 'talkdesk-stop'],
    ['a wrong one: kamailio challenges again, and the call ends as sip-auth-failed', 'wrong', 'sip-auth-failed'],
  ])('a 407 from the proxy, %s', async (_what, password, cause) => {
    const { sipp, gw, td } = await callThroughProxy('uas_wait_bye.xml', {
      env: { CCAI_SIP_AUTH_USERNAME: 'talkdesk-gw', CCAI_SIP_AUTH_PASSWORD: password },
      callSid: 'CA-auth-1',
    });
    if (cause === 'talkdesk-stop') {
      const result = await stopOnceAnswered(gw, td, sipp);
      // the proxy consumed the credentials: the bot never saw them
      expect(result.messages).not.toMatch(/Proxy-Authorization/i);
    } else {
      const { stop } = await td.waitForStop(5_000);
      expect(stop.stop).toMatchObject({ command: 'error' });
      await td.closed;
      await sipp.stop();
    }
    await expect.poll(() => linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual([cause]);
    // challenged once, answered once: by the proxy, with its realm
    expect(linesWith(gw.logs, 'INVITE sent again with credentials')).toMatchObject([{ status: 407, realm: 'ccai.test' }]);
  });
});
