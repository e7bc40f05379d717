import { once } from 'node:events';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { HTTP_LIMITS, type TalkdeskServer, type HttpLimits } from '../../../../plugin/talkdesk/server.js';
import { startCountingServer, type CountingServer } from '../../../support/counting-server.js';
import { makeToken } from '../../../support/fake-talkdesk.js';
import { makeTestPki, type TestPki } from '../../../support/pki.js';
import { captureClientHello, stallHandshake, STALL_MODES, type StalledClient } from '../../../support/stalled-tls.js';
import { EXAMPLE_BOT } from '../../../support/talkdesk-call.js';

// The wss listener (TLS_CERT_FILE set) against clients that open a TLS handshake and never finish it: each is cut off
// at the handshake timeout, and a real client handshaking meanwhile gets its WebSocket as usual.

const SHORT_MS = 600;

let pki: TestPki;
let ca: Buffer;
let hello: Buffer;
beforeAll(async () => {
  pki = await makeTestPki();
  ca = await readFile(pki.caFile);
  hello = await captureClientHello();
});
afterAll(() => pki.remove());

let running: TalkdeskServer | undefined;
const stalled: StalledClient[] = [];
afterEach(async () => {
  for (const s of stalled.splice(0)) s.destroy();
  await running?.close();
  running = undefined;
  vi.restoreAllMocks();
});

async function start(httpLimits?: Partial<HttpLimits>): Promise<CountingServer> {
  const s = await startCountingServer({ TLS_CERT_FILE: pki.server.cert, TLS_KEY_FILE: pki.server.key }, httpLimits ? { httpLimits } : {});
  running = s.server;
  return s;
}

function wssCall(port: number): Promise<number> {
  const q = new URLSearchParams({
    sipuri: '+17345551234',
    token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret),
    botId: EXAMPLE_BOT.botId,
    accountId: 'a',
  });
  const ws = new WebSocket(`wss://127.0.0.1:${port}/audiosocket/talkdesk/?${q.toString()}`, { ca });
  return once(ws, 'close').then(([code]) => code as number);
}

describe('wss listener: a TLS handshake that never finishes', () => {
  it('the handshake timeout is set explicitly (10 s), not left at Node\'s 120 s', async () => {
    expect(HTTP_LIMITS.tlsHandshakeTimeoutMs).toBe(10_000);
    const created = vi.spyOn(https, 'createServer');
    await start();
    expect(created).toHaveBeenCalledOnce();
    expect(created.mock.calls[0]![0]).toMatchObject({ handshakeTimeout: 10_000 });
  });

  it('silent, half-ClientHello and trickling clients are disconnected at the timeout; a real client meanwhile is served', async () => {
    const s = await start({ tlsHandshakeTimeoutMs: SHORT_MS });
    for (const mode of STALL_MODES) stalled.push(await stallHandshake(s.port, mode, hello));

    // while all three hold their connections open, a real Talkdesk client handshakes, upgrades and is served
    const t0 = performance.now();
    expect(await wssCall(s.port)).toBe(1000);
    expect(performance.now() - t0).toBeLessThan(SHORT_MS);
    expect(s.streams).toBe(1);

    const closed = await Promise.all(stalled.map((c) => c.closedAfterMs));
    for (const [i, ms] of closed.entries()) {
      expect(ms, STALL_MODES[i]).toBeGreaterThan(SHORT_MS - 100);
      expect(ms, STALL_MODES[i]).toBeLessThan(SHORT_MS + 1_500);
    }
    // no ServerHello was ever sent: the server never saw a whole ClientHello
    expect(stalled.map((c) => c.received())).toEqual([0, 0, 0]);

    // and the listener goes on serving
    expect(await wssCall(s.port)).toBe(1000);
    expect(s.streams).toBe(2);
  });
});
