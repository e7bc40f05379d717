import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { startGateway } from '../support/gateway.js';
import { EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { requireTool } from '../support/tools.js';

// Talkdesk only dials wss:// (protocol notes §1): with a certificate and key configured the gateway speaks TLS.
let dir: string;
let ca: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wss-test-'));
  await promisify(execFile)(requireTool('openssl'), [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  ca = await readFile(join(dir, 'cert.pem'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Resolves with the HTTP status of a refused upgrade, or 101 when the socket opened (then closes it). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('wss', () => {
  it('authenticates Talkdesk over TLS: a good token opens the stream, a bad one gets 401', async () => {
    const gateway = await startGateway({ TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') });
    try {
      const params = { port: gateway.app.port, sipuri: '+17345551234', botId: EXAMPLE_BOT.botId, accountId: 'acc' };
      const good = talkdeskUrl({ ...params, token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret) });
      const bad = talkdeskUrl({ ...params, token: makeToken(EXAMPLE_BOT.clientId, 'wrong') });
      expect(good.startsWith('ws://')).toBe(true);

      expect(await upgradeStatus(good.replace('ws://', 'wss://'))).toBe(101);
      expect(await upgradeStatus(bad.replace('ws://', 'wss://'))).toBe(401);
      // a plain-text client gets no WebSocket from a TLS listener
      await expect(upgradeStatus(good)).rejects.toThrow();
    } finally {
      await gateway.stop();
    }
    expect(gateway.app.registry.size).toBe(0);
  });
});
