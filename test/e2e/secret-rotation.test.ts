import { afterEach, describe, expect, it } from 'vitest';
import { DrachtioBot } from '../support/drachtio-bot.js';
import { BOT_PORT, FakeDrachtio } from '../support/fake-drachtio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { gatewayPerTest } from './gateway-per-test.js';

// A client secret rotated the way the README says: add the new one before the old, switch Kore, remove the old.
// Calls signed with either go through, whole, while both are listed. The bot sits behind the fake drachtio-server
// with real RTP (no sipp: no fixed ports).
const startGateway = gatewayPerTest();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const BOT = { botId: 'st-rotating', clientId: 'cs-rotating' };
const NEW_SECRET = 'rotation-new-secret';
const OLD_SECRET = 'rotation-old-secret';

async function gatewayWithSecrets(secrets: string[]): Promise<{ gw: Gateway; drachtio: FakeDrachtio }> {
  const drachtio = await FakeDrachtio.start();
  cleanups.push(() => drachtio.close());
  const gw = await startGateway({
    BOTS: JSON.stringify([{ ...BOT, clientSecret: secrets }]),
    SIP_BACKEND: 'drachtio',
    DRACHTIO_PORT: String(drachtio.port),
    DRACHTIO_SECRET: drachtio.secret,
    CCAI_SIP_PORT: BOT_PORT,
    RTP_PORT_MIN: '34000',
    RTP_PORT_MAX: '34098',
  });
  return { gw, drachtio };
}

function connect(gw: Gateway, secret: string): Promise<FakeTalkdesk> {
  const token = makeToken(BOT.clientId, secret);
  return FakeTalkdesk.connect(talkdeskUrl({ port: gw.app.port, sipuri: '+17345551234', token, botId: BOT.botId, accountId: 'acc-1', agentassist: false }));
}

/** One whole call: upgrade, INVITE answered, the bot's audio at Talkdesk, the bot's BYE → stop{ok}. */
async function callWith(gw: Gateway, drachtio: FakeDrachtio, secret: string): Promise<void> {
  const td = await connect(gw, secret);
  td.sendConnected();
  td.sendStart({ streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0', accountSid: 'td-account-1', callSid: 'CA-rotation', interactionId: 'interaction-rotation' });
  const bot = await DrachtioBot.answerNext(drachtio);
  cleanups.push(() => bot.close());
  await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);
  bot.bye();
  expect((await td.waitForStop(5_000)).stop.stop).toMatchObject({ command: 'ok' });
  await td.closed;
}

describe('secret rotation', () => {
  it('while both secrets are listed, a call signed with the new and one signed with the old both go through', async () => {
    const { gw, drachtio } = await gatewayWithSecrets([NEW_SECRET, OLD_SECRET]);
    await callWith(gw, drachtio, OLD_SECRET);
    await callWith(gw, drachtio, NEW_SECRET);
    await expect.poll(() => gw.app.registry.size).toBe(0);

    expect(linesWith(gw.logs, 'talkdesk stream accepted').map((l) => l['secretIndex'])).toEqual([1, 0]);
    expect(linesWith(gw.logs, 'call ended').map((l) => l['outcome'])).toEqual(['ok', 'ok']);
    const log = JSON.stringify(gw.logs);
    expect(log).not.toContain(NEW_SECRET);
    expect(log).not.toContain(OLD_SECRET);
  });

  it('once the old secret is removed, its tokens are refused and the new one carries on', async () => {
    const { gw, drachtio } = await gatewayWithSecrets([NEW_SECRET]);
    await expect(connect(gw, OLD_SECRET)).rejects.toMatchObject({ status: 401 });
    await callWith(gw, drachtio, NEW_SECRET);
    expect(linesWith(gw.logs, 'upgrade refused')).toMatchObject([{ cause: 'token-invalid' }]);
  });
});
