import { describe, expect, it, onTestFinished } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { startDnsServer, type Zone } from '../support/dns-server.js';
import { linesWith } from '../support/gateway.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// CCAI published as a SIP domain (RFC 3263): the gateway has CCAI_SIP_HOST=ccai.test and no port, and asks a DNS server
// the test runs in-process (CCAI_DNS_SERVERS) for `_sip._udp.ccai.test`. Its SRV records name a first target that
// fails and a second, live sipp bot; the call must reach the second within the INVITE deadline.

const live = botPorts(15);
/** nothing listens here: a UDP INVITE to it is never answered */
const dead = botPorts(16);
const unavailable = botPorts(17);
const TARGET_TIMEOUT_MS = 1_000;
const startGateway = gatewayPerTest();

/** `_sip._udp.ccai.test` SRV records, each target a name of its own on 127.0.0.1 */
function zone(targets: Array<{ name: string; priority: number; port: number }>): Zone {
  const published: Zone = {
    'ccai.test': [], // the name exists, without NAPTR: the standard SRV name is asked next (§4.1)
    '_sip._udp.ccai.test': targets.map(({ name, priority, port }) => ({
      type: 'SRV' as const,
      ttl: 60,
      data: { priority, weight: 0, port, target: `${name}.ccai.test` },
    })),
  };
  for (const { name } of targets) published[`${name}.ccai.test`] = [{ type: 'A', ttl: 60, data: '127.0.0.1' }];
  return published;
}

async function gatewayFinding(targets: Parameters<typeof zone>[0]) {
  const dns = await startDnsServer(zone(targets));
  onTestFinished(() => dns.close());
  const gw = await startGateway({
    CCAI_SIP_HOST: 'ccai.test',
    CCAI_SIP_PORT: '',
    CCAI_DNS_SERVERS: dns.address,
    CCAI_TARGET_TIMEOUT_MS: String(TARGET_TIMEOUT_MS),
    RTP_PORT_MIN: '33800',
    RTP_PORT_MAX: '33898',
  });
  return { dns, gw };
}

describe('CCAI found by DNS SRV, CCAI_SIP_PORT unset (RFC 3263)', () => {
  it('a dead first target (priority 10): after CCAI_TARGET_TIMEOUT_MS the INVITE goes to the second (priority 20), Talkdesk gets stop{ok}', async () => {
    const sipp = await startSippBot({ scenario: 'uas_ok.xml', ...live });
    const { dns, gw } = await gatewayFinding([
      { name: 'dead', priority: 10, port: dead.sipPort },
      { name: 'live', priority: 20, port: live.sipPort },
    ]);
    const td = await dialGateway(gw.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(15_000);
    expect(stop.stop).toMatchObject({ command: 'ok' });
    const result = await sipp.done;
    expectSippSuccess(result);
    // the request-URI names the domain, no port; the live bot got the call's second transaction (CSeq 2)
    expect(result.messages).toMatch(/^INVITE sip:\+17345551234@ccai\.test;transport=udp SIP\/2\.0$/m);
    expect(result.messages).toMatch(/^CSeq: 2 INVITE$/m);
    expect(dns.questions).toEqual(expect.arrayContaining(['NAPTR ccai.test', 'SRV _sip._udp.ccai.test', 'A dead.ccai.test', 'A live.ccai.test']));
    expect(linesWith(gw.logs, 'CCAI target failed: INVITE sent to the next one')).toEqual([
      expect.objectContaining({
        target: `127.0.0.1:${dead.sipPort} (dead.ccai.test)`,
        reason: `no response within ${TARGET_TIMEOUT_MS} ms`,
        next: `127.0.0.1:${live.sipPort} (live.ccai.test)`,
      }),
    ]);
    await td.closed;
    await expect.poll(() => linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['bot-bye']);
  });

  it('a first target answering 503: the INVITE goes at once to the second, Talkdesk gets stop{ok}', async () => {
    const busy = await startSippBot({ scenario: 'uas_unavailable.xml', ...unavailable });
    const sipp = await startSippBot({ scenario: 'uas_ok.xml', ...live });
    const { gw } = await gatewayFinding([
      { name: 'out-of-service', priority: 10, port: unavailable.sipPort },
      { name: 'live', priority: 20, port: live.sipPort },
    ]);
    const td = await dialGateway(gw.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(15_000);
    expect(stop.stop).toMatchObject({ command: 'ok' });
    expectSippSuccess(await busy.done);
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages).toMatch(/^CSeq: 2 INVITE$/m);
    expect(linesWith(gw.logs, 'CCAI target failed: INVITE sent to the next one')).toEqual([
      expect.objectContaining({ target: `127.0.0.1:${unavailable.sipPort} (out-of-service.ccai.test)`, reason: '503 Service Unavailable' }),
    ]);
    await td.closed;
    await expect.poll(() => linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['bot-bye']);
  });

  it('every target failing (silent, then 503): Talkdesk gets stop{error}, the cause the last target\'s, and the log says all failed', async () => {
    const busy = await startSippBot({ scenario: 'uas_unavailable.xml', ...unavailable });
    const { gw } = await gatewayFinding([
      { name: 'dead', priority: 10, port: dead.sipPort },
      { name: 'out-of-service', priority: 20, port: unavailable.sipPort },
    ]);
    const td = await dialGateway(gw.app.port);

    const { stop } = await td.waitForStop(10_000);
    expect(stop.stop).toMatchObject({ command: 'error' });
    expectSippSuccess(await busy.done);
    await td.closed;
    await expect.poll(() => linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['sip-503']);
    expect(linesWith(gw.logs, 'INVITE failed')).toEqual([
      expect.objectContaining({ cause: 'sip-503', reason: expect.stringMatching(/503 Service Unavailable \(the last of 2 CCAI targets; each failed\)$/) }),
    ]);
  });
});
