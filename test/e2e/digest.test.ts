import { describe, expect, it } from 'vitest';
import { linesWith } from '../support/gateway.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { stopOnceAnswered } from './call-steps.js';
import { gatewayPerTest } from './gateway-per-test.js';

// A CCAI that demands digest authentication, played by sipp: its 401 challenge, and its own check (verifyauth) of the
// Authorization the gateway answers with (RFC 3261 §22.2). sipp checks only Authorization, so a proxy's 407 and
// Proxy-Authorization are tested against the fake UAS (test/unit/plugin/sip/digest-invite.test.ts).

const bot = botPorts(13);
const startGateway = gatewayPerTest();
const gatewayEnv = (password: string) => ({
  CCAI_SIP_PORT: String(bot.sipPort),
  RTP_PORT_MIN: '33400',
  RTP_PORT_MAX: '33498',
  CCAI_SIP_AUTH_USERNAME: 'talkdesk-gw',
  CCAI_SIP_AUTH_PASSWORD: password,
});

describe('a CCAI that challenges the INVITE (401)', () => {
  it('right credentials: the INVITE goes again with an Authorization that sipp verifies, and the call is up', async () => {
    const sipp = await startSippBot({ scenario: 'uas_auth.xml', ...bot });
    const gw = await startGateway(gatewayEnv('s3cret'));
    const td = await dialGateway(gw.app.port);

    const result = await stopOnceAnswered(gw, td, sipp);
    expect(result.messages).toMatch(/^Authorization: Digest username="talkdesk-gw", realm="ccai.test", nonce="\d+nonce1", uri="sip:\+17345551234@127\.0\.0\.1:\d+;transport=udp", response="[0-9a-f]{32}", algorithm=MD5, qop=auth, nc=00000001, cnonce="[0-9a-f]+"$/m);
    expect(result.messages).not.toContain('s3cret');
    expect(linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['talkdesk-stop']);
    expect(JSON.stringify(gw.logs)).not.toContain('s3cret');
  });

  it('wrong credentials: challenged again, the call ends with stop{error}, cause sip-auth-failed, and no third INVITE', async () => {
    const sipp = await startSippBot({ scenario: 'uas_auth.xml', ...bot });
    const gw = await startGateway(gatewayEnv('wrong'));
    const td = await dialGateway(gw.app.port);

    const { stop } = await td.waitForStop(5_000);
    expect(stop.stop).toMatchObject({ command: 'error' });
    await td.closed;
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages.match(/^INVITE sip:/gm)).toHaveLength(2);
    await expect.poll(() => linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['sip-auth-failed']);
  });
});
