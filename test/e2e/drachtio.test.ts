import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BOT_PORT, FakeDrachtio } from '../support/fake-drachtio.js';
import { linesWith } from '../support/gateway.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// SIP_BACKEND=drachtio through the whole gateway: the call is the same Call, only the adapter differs. The bot
// sits behind a fake drachtio-server (drachtio-server itself cannot be installed here), and its RTP is a socket.
const startGateway = gatewayPerTest();

describe('SIP_BACKEND=drachtio', () => {
  it('a bot BYE with escalation headers, relayed by drachtio-server, becomes stop{escalate, billing}', async () => {
    const drachtio = await FakeDrachtio.start();
    const botRtp = createSocket('udp4');
    botRtp.bind(0, '127.0.0.1');
    await once(botRtp, 'listening');
    let rtpFromGateway = 0;
    botRtp.on('message', () => rtpFromGateway++);
    try {
      const gateway = await startGateway({
        SIP_BACKEND: 'drachtio',
        DRACHTIO_PORT: String(drachtio.port),
        DRACHTIO_SECRET: drachtio.secret,
        RTP_PORT_MIN: '25000',
        RTP_PORT_MAX: '25098',
        // where the fake drachtio-server's bot answers (test/support/fake-drachtio.ts): no socket of ours
        CCAI_SIP_PORT: BOT_PORT,
      });
      expect(gateway.app.backend.name).toBe('drachtio');
      const td = await dialGateway(gateway.app.port);

      const invite = await drachtio.next('INVITE', 5_000);
      expect(invite.sip.uri).toBe('sip:+17345551234@127.0.0.1:5070;transport=udp');
      expect(invite.sip.get('X-Talkdesk-Call-Sid')).toBe('CA-test-call-1');
      const answer = [
        'v=0', 'o=bot 1 1 IN IP4 127.0.0.1', 's=bot', 'c=IN IP4 127.0.0.1', 't=0 0',
        `m=audio ${botRtp.address().port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', '',
      ].join('\r\n');
      drachtio.respond(invite, 200, 'OK', { body: answer, headers: { 'Content-Type': 'application/sdp' } });
      await drachtio.next('ACK');
      // the gateway's caller audio reaches the bot's RTP address from the answer
      await expect.poll(() => rtpFromGateway, { timeout: 2_000 }).toBeGreaterThan(10);

      // a digit the bot sends as SIP INFO (dtmf-relay) is recognised and counted like an RFC 4733 one
      drachtio.request(invite, 'INFO', {
        headers: { 'Content-Type': 'application/dtmf-relay' },
        body: 'Signal=4\r\nDuration=160\r\n',
      });
      await expect.poll(() => linesWith(gateway.logs, 'dtmf from bot (SIP INFO)').map((l) => l.digit)).toEqual(['4']);

      drachtio.request(invite, 'BYE', {
        headers: { 'X-Escalate': 'true', 'X-Escalation-Data': '{"queue":"billing"}' },
      });
      const { stop } = await td.waitForStop(5_000);
      expect(stop.stop).toMatchObject({ command: 'escalate', ringGroup: 'billing', callSid: 'CA-test-call-1' });
      await td.closed;
      await expect
        .poll(() => linesWith(gateway.logs, 'call ended').map((l) => [l.outcome, l.cause]))
        .toEqual([['escalate', 'bot-escalate']]);
      expect(linesWith(gateway.logs, 'call ended')[0]!.digitsFromBot).toBe(1);
    } finally {
      botRtp.close();
      await drachtio.close();
    }
  });

  it('a gateway whose drachtio-server refuses the secret does not start, and says which setting to fix', async () => {
    const drachtio = await FakeDrachtio.start();
    try {
      await expect(startGateway({ SIP_BACKEND: 'drachtio', DRACHTIO_PORT: String(drachtio.port), DRACHTIO_SECRET: 'wrong' })).rejects.toThrow(
        /DRACHTIO_SECRET/,
      );
    } finally {
      await drachtio.close();
    }
  });
});
