import { afterEach, describe, expect, it } from 'vitest';
import { drachtioChecks } from '../../../../../plugin/operations/doctor/drachtio.js';
import { sipOptionsCheck } from '../../../../../plugin/operations/doctor/sip-options.js';
import { FakeDrachtio } from '../../../../support/fake-drachtio.js';
import { FakeUas } from '../../sip/fake-uas.js';
import { configWith, OWN_BOTS, silentLog } from './fixture.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function uas(): Promise<FakeUas> {
  const bot = await FakeUas.start();
  cleanups.push(() => bot.close());
  return bot;
}

/** the doctor's OPTIONS to `bot`, which answers it with `status` (none: it stays silent) */
async function options(bot: FakeUas, answer?: [number, string], env: Record<string, string> = {}) {
  const { config } = configWith({ BOTS: OWN_BOTS, SIP_PORT: '0', CCAI_SIP_PORT: String(bot.port), ...env });
  const check = sipOptionsCheck(config, { host: '127.0.0.1', port: bot.port }, silentLog, 400);
  if (answer) bot.reply(await bot.next('OPTIONS'), ...answer);
  return check;
}

describe('doctor SIP OPTIONS check', () => {
  it('200: ✓ with the URI, status and round trip, from the configured From user', async () => {
    const bot = await uas();
    const check = await options(bot, [200, 'OK']);
    expect(check).toEqual({ status: 'ok', title: 'SIP OPTIONS', detail: expect.stringMatching(new RegExp(`^sip:127\\.0\\.0\\.1:${bot.port};transport=udp answered 200 OK in \\d+ ms$`)) });
    expect(bot.received[0]!.message.sip.get('from')).toMatch(/^<sip:talkdesk-gw@127\.0\.0\.1:\d+>/);
  });

  it.each([
    [[407, 'Proxy Authentication Required'], {}, 'warn', /it asks for credentials, and none are set$/],
    [[401, 'Unauthorized'], { CCAI_SIP_AUTH_USERNAME: 'gw', CCAI_SIP_AUTH_PASSWORD: 'pw' }, 'ok', /which calls answer with CCAI_SIP_AUTH_USERNAME$/],
    [[403, 'Forbidden'], {}, 'warn', /: CCAI refuses this gateway$/],
    [[405, 'Method Not Allowed'], {}, 'ok', /answered 405 Method Not Allowed in \d+ ms$/],
    [[404, 'Not Found'], {}, 'warn', /answered 404 Not Found in \d+ ms$/],
  ] as const)('%j %j: %s', async (answer, env, status, detail) => {
    const check = await options(await uas(), [...answer], env);
    expect(check).toMatchObject({ status, detail: expect.stringMatching(detail) });
  });

  it('no answer within the bound: ✗ naming the settings to check', async () => {
    const bot = await uas();
    expect(await options(bot)).toEqual({
      status: 'fail',
      title: 'SIP OPTIONS',
      detail: `no answer from sip:127.0.0.1:${bot.port};transport=udp within 400 ms`,
      fix: 'check CCAI_SIP_HOST, CCAI_SIP_PORT and CCAI_SIP_TRANSPORT, that firewalls let SIP through both ways, and that CCAI allows this host (SIP_ADVERTISED_ADDRESS 127.0.0.1)',
    });
  });
});

describe('doctor drachtio-server check', () => {
  async function fake(hostports?: string): Promise<FakeDrachtio> {
    const server = await FakeDrachtio.start(hostports === undefined ? {} : { hostports });
    cleanups.push(() => server.close());
    return server;
  }
  const env = (server: FakeDrachtio, secret: string, transport = 'udp') =>
    configWith({ BOTS: OWN_BOTS, SIP_BACKEND: 'drachtio', DRACHTIO_PORT: String(server.port), DRACHTIO_SECRET: secret, CCAI_SIP_TRANSPORT: transport }).config;

  it('connects, is authenticated and has the transport: ✓, and the connection is closed again', async () => {
    const server = await fake();
    expect(await drachtioChecks(env(server, server.secret), silentLog, 2000)).toEqual([
      { status: 'ok', title: 'drachtio-server', detail: `127.0.0.1:${server.port} connected, the secret accepted, and it has the udp transport CCAI_SIP_TRANSPORT needs` },
    ]);
    expect(server.authenticatedClients).toBe(0);
  });

  it('a wrong secret: ✗ naming DRACHTIO_SECRET', async () => {
    const server = await fake();
    expect(await drachtioChecks(env(server, 'not-it'), silentLog, 2000)).toMatchObject([{ status: 'fail', detail: expect.stringContaining('refused our secret (check DRACHTIO_SECRET)') }]);
  });

  it('no transport for CCAI_SIP_TRANSPORT: ✗ saying what to bind', async () => {
    const server = await fake('udp/127.0.0.1:5060');
    expect(await drachtioChecks(env(server, server.secret, 'tls'), silentLog, 2000)).toMatchObject([
      { status: 'fail', detail: expect.stringMatching(/has no tls SIP transport \(it offers udp\/127\.0\.0\.1:5060\), and CCAI_SIP_TRANSPORT=tls needs one: bind/) },
    ]);
  });

  it('nothing listening: ✗ naming DRACHTIO_HOST and DRACHTIO_PORT', async () => {
    const server = await fake();
    const config = env(server, server.secret);
    await server.close();
    expect(await drachtioChecks(config, silentLog, 500)).toMatchObject([{ status: 'fail', detail: expect.stringMatching(/within 500 ms \(check DRACHTIO_HOST and DRACHTIO_PORT\): ECONNREFUSED/) }]);
  });
});
