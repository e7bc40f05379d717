import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { startGateway } from '../support/gateway.js';
import { makeTestPki, type TestPki } from '../support/pki.js';
import { EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { upgradeStatus } from '../support/upgrade-status.js';

// Talkdesk only dials wss:// (protocol notes §1): with a certificate and key configured the gateway speaks TLS.
let pki: TestPki;
let ca: Buffer;

beforeAll(async () => {
  pki = await makeTestPki();
  ca = await readFile(pki.caFile);
});
afterAll(() => pki.remove());

describe('wss', () => {
  it('authenticates Talkdesk over TLS: a good token opens the stream, a bad one gets 401', async () => {
    const gateway = await startGateway({ TLS_CERT_FILE: pki.server.cert, TLS_KEY_FILE: pki.server.key });
    try {
      const params = { port: gateway.app.port, sipuri: '+17345551234', botId: EXAMPLE_BOT.botId, accountId: 'acc' };
      const good = talkdeskUrl({ ...params, token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret) });
      const bad = talkdeskUrl({ ...params, token: makeToken(EXAMPLE_BOT.clientId, 'wrong') });
      expect(good.startsWith('ws://')).toBe(true);

      expect(await upgradeStatus(good.replace('ws://', 'wss://'), { ca })).toBe(101);
      expect(await upgradeStatus(bad.replace('ws://', 'wss://'), { ca })).toBe(401);
      // a plain-text client gets no WebSocket from a TLS listener
      await expect(upgradeStatus(good)).rejects.toThrow();
    } finally {
      await gateway.stop();
    }
    expect(gateway.app.registry.size).toBe(0);
  });
});
