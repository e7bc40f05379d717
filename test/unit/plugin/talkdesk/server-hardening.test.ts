import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { TalkdeskServer, TalkdeskServerOptions } from '../../../../plugin/talkdesk/server.js';
import { startCountingServer, type CountingServer } from '../../../support/counting-server.js';
import { makeToken } from '../../../support/fake-talkdesk.js';
import { EXAMPLE_BOT } from '../../../support/talkdesk-call.js';

// The internet-facing HTTP front on its own (no calls behind it): what a hostile client can make it do before any
// WebSocket exists. Accepted upgrades are closed at once by the test's onStream.

let running: TalkdeskServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(options: TalkdeskServerOptions = {}, env: Record<string, string> = {}): Promise<CountingServer> {
  const s = await startCountingServer(env, options);
  running = s.server;
  return s;
}

function query(token: string): string {
  const q = new URLSearchParams({ sipuri: '+17345551234', token, botId: EXAMPLE_BOT.botId, accountId: 'a' });
  return `/audiosocket/talkdesk/?${q.toString()}`;
}

/** One raw upgrade request; resolves with the whole answer once the server closes the connection. */
async function rawUpgrade(port: number, path: string, forwardedFor?: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      (forwardedFor === undefined ? '' : `X-Forwarded-For: ${forwardedFor}\r\n`) +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  return readAll(socket);
}

function readAll(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.on('close', () => resolve(text)));
}

const good = () => makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret);

describe('Talkdesk server under hostile clients', () => {
  it('an address that keeps failing authentication is answered 429 with Retry-After, even with a good token', async () => {
    const s = await start({ authRateLimit: { maxFailures: 3, blockMs: 60_000 } });
    for (let i = 0; i < 3; i++) expect(await rawUpgrade(s.port, query(makeToken(EXAMPLE_BOT.clientId, 'wrong-secret')))).toMatch(/^HTTP\/1.1 401 /);
    const blocked = await rawUpgrade(s.port, query(good()));
    expect(blocked).toMatch(/^HTTP\/1.1 429 Too Many Requests\r\n/);
    expect(blocked).toMatch(/\r\nRetry-After: 60\r\n/);
    expect(s.streams).toBe(0);
    expect(s.failures.slice(3)).toEqual(['rate-limited']);
  });

  it('behind a trusted proxy the limit blocks the client it forwarded for, not the proxy; untrusted, the header is ignored', async () => {
    const bad = query(makeToken(EXAMPLE_BOT.clientId, 'wrong-secret'));
    const s = await start({ authRateLimit: { maxFailures: 3, blockMs: 60_000 } }, { TRUSTED_PROXIES: '127.0.0.1' });
    for (let i = 0; i < 3; i++) expect(await rawUpgrade(s.port, bad, '203.0.113.9')).toMatch(/^HTTP\/1.1 401 /);
    expect(await rawUpgrade(s.port, query(good()), '203.0.113.9')).toMatch(/^HTTP\/1.1 429 /);
    // another client behind the same proxy, and one that claims to be someone else to the left of its real address
    const other = new WebSocket(`ws://127.0.0.1:${s.port}${query(good())}`, { headers: { 'X-Forwarded-For': '198.51.100.7' } });
    expect((await once(other, 'close'))[0]).toBe(1000);
    expect(await rawUpgrade(s.port, query(good()), '198.51.100.7, 203.0.113.9')).toMatch(/^HTTP\/1.1 429 /);
    expect(s.streams).toBe(1);
    await running!.close();

    const direct = await start({ authRateLimit: { maxFailures: 3, blockMs: 60_000 } });
    for (let i = 0; i < 3; i++) expect(await rawUpgrade(direct.port, bad, `203.0.113.${i}`)).toMatch(/^HTTP\/1.1 401 /);
    expect(await rawUpgrade(direct.port, query(good()), '198.51.100.7')).toMatch(/^HTTP\/1.1 429 /);
  });

  it('below the limit a good token still gets its WebSocket', async () => {
    const s = await start({ authRateLimit: { maxFailures: 3 } });
    for (let i = 0; i < 2; i++) expect(await rawUpgrade(s.port, query('not.a.jwt'))).toMatch(/^HTTP\/1.1 401 /);
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}${query(good())}`);
    const [code] = (await once(ws, 'close')) as [number];
    expect(code).toBe(1000);
    expect(s.streams).toBe(1);
  });

  it('an oversized token is 401 before any HMAC; an oversized URL is 431 from Node; the server keeps serving', async () => {
    const s = await start();
    expect(await rawUpgrade(s.port, query('a'.repeat(5_000)))).toMatch(/^HTTP\/1.1 401 Unauthorized[\s\S]*token longer than 4096/);
    expect(await rawUpgrade(s.port, query('a'.repeat(20_000)))).toMatch(/^HTTP\/1.1 431 /);
    expect(s.failures).toEqual(['token-too-long']);
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}${query(good())}`);
    await once(ws, 'close');
    expect(s.streams).toBe(1);
  });

  it('a connection that sends nothing, and one that trickles its headers, are closed at the headers timeout', async () => {
    const s = await start({ httpLimits: { headersTimeoutMs: 600, requestTimeoutMs: 1_000, checkIntervalMs: 100 } });
    const t0 = performance.now();
    const silent = connect(s.port, '127.0.0.1');
    const slow = connect(s.port, '127.0.0.1');
    await Promise.all([once(silent, 'connect'), once(slow, 'connect')]);
    const silentDone = readAll(silent).then(() => performance.now() - t0);
    const slowDone = readAll(slow).then(() => performance.now() - t0);
    slow.write('GET /audiosocket/talkdesk/ HTTP/1.1\r\n');
    const trickle = setInterval(() => slow.writable && slow.write('X-Slow: a\r\n'), 50);
    try {
      const [silentMs, slowMs] = await Promise.all([silentDone, slowDone]);
      expect(silentMs).toBeLessThan(2_000);
      expect(slowMs).toBeGreaterThan(500);
      expect(slowMs).toBeLessThan(2_000);
    } finally {
      clearInterval(trickle);
    }
    // and the server still answers
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}${query(good())}`);
    await once(ws, 'close');
    expect(s.streams).toBe(1);
  });
});
