import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { StreamTransport } from '../../../../plugin/sip/embedded/transport-stream.js';
import { SIP_TLS_HANDSHAKE_TIMEOUT_MS, TlsFlavor } from '../../../../plugin/sip/embedded/transport-tls.js';
import type { Destination, TransportUser } from '../../../../plugin/sip/embedded/transport.js';
import { makeTestPki, type TestPki } from '../../../support/pki.js';
import { captureClientHello, stallHandshake, STALL_MODES, type StalledClient } from '../../../support/stalled-tls.js';
import { capturedLog } from '../../../support/captured-log.js';

// The embedded stack's SIP TLS listener (SIP_TLS_PORT with SIP_TLS_CERT_FILE) against clients that open a TLS
// handshake and never finish it: each is closed at the handshake timeout, and a bot connecting meanwhile for its BYE
// handshakes and is heard as usual.

const SHORT_MS = 600;

let pki: TestPki;
let hello: Buffer;
beforeAll(async () => {
  pki = await makeTestPki();
  hello = await captureClientHello();
});
afterAll(() => pki.remove());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function flavor(log: pino.Logger, handshakeTimeoutMs?: number): TlsFlavor {
  return new TlsFlavor({
    tls: { port: 0, verify: true, caFile: pki.caFile, certFile: pki.server.cert, keyFile: pki.server.key },
    ccaiHost: '127.0.0.1',
    log,
    ...(handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs }),
  });
}

function options(callId: string): string {
  return [
    'OPTIONS sip:talkdesk@127.0.0.1 SIP/2.0',
    'Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-stall',
    'From: <sip:bot@127.0.0.1>;tag=1',
    'To: <sip:talkdesk@127.0.0.1>',
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('SIP TLS listener: a TLS handshake that never finishes', () => {
  it(`the handshake timeout is set explicitly (${SIP_TLS_HANDSHAKE_TIMEOUT_MS} ms), not left at Node's 120 s`, async () => {
    expect(SIP_TLS_HANDSHAKE_TIMEOUT_MS).toBe(10_000);
    const server = (await flavor(pino({ level: 'silent' })).start(() => undefined)) as Server;
    expect(server).toBeDefined();
    // node:tls keeps the option under an internal symbol (lib/_tls_wrap.js kHandshakeTimeout, Node 20)
    const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'handshake-timeout');
    expect(key).toBeDefined();
    expect((server as unknown as Record<symbol, unknown>)[key!]).toBe(SIP_TLS_HANDSHAKE_TIMEOUT_MS);
  });

  it('silent, half-ClientHello and trickling clients are closed at the timeout; a bot connecting meanwhile is heard', async () => {
    const { log, lines } = capturedLog();
    const received: Array<{ callId: string | undefined; source: Destination }> = [];
    const user: TransportUser = {
      receive: (data, source) => received.push({ callId: /^Call-ID: (.*)$/m.exec(data.toString())?.[1]?.trim(), source }),
      connectionLost: vi.fn(),
      uses: () => true,
    };
    const transport = new StreamTransport(flavor(log, SHORT_MS), { bindAddress: '127.0.0.1', port: 0, log, idleCloseMs: 30_000 });
    await transport.start(user);
    cleanups.push(() => transport.close());
    const port = transport.localPort;

    const stalled: StalledClient[] = [];
    cleanups.push(() => stalled.forEach((s) => s.destroy()));
    for (const mode of STALL_MODES) stalled.push(await stallHandshake(port, mode, hello));

    // beside them, a bot opens a connection for its BYE: it handshakes at once and its request is heard
    const t0 = performance.now();
    const bot = tlsConnect({ host: '127.0.0.1', port, ca: await readFile(pki.caFile) }) as TLSSocket;
    bot.on('error', () => undefined);
    cleanups.push(() => bot.destroy());
    await once(bot, 'secureConnect');
    bot.write(options('before-the-timeout'));
    await vi.waitFor(() => expect(received.map((r) => r.callId)).toEqual(['before-the-timeout']));
    expect(performance.now() - t0).toBeLessThan(SHORT_MS);

    const closed = await Promise.all(stalled.map((c) => c.closedAfterMs));
    for (const [i, ms] of closed.entries()) {
      expect(ms, STALL_MODES[i]).toBeGreaterThan(SHORT_MS - 100);
      expect(ms, STALL_MODES[i]).toBeLessThan(SHORT_MS + 1_500);
    }
    expect(stalled.map((c) => c.received())).toEqual([0, 0, 0]);
    // one rate-limited line names why
    expect(lines.filter((l) => l.msg === 'incoming SIP TLS handshake failed')).toEqual([
      expect.objectContaining({ reason: 'ERR_TLS_HANDSHAKE_TIMEOUT', level: 40 }),
    ]);

    // the bot's connection outlived them and still carries SIP; the stalled ones never became connections
    expect(bot.destroyed).toBe(false);
    bot.write(options('after-the-timeout'));
    await vi.waitFor(() => expect(received.map((r) => r.callId)).toEqual(['before-the-timeout', 'after-the-timeout']));
    expect(new Set(received.map((r) => r.source.port))).toEqual(new Set([bot.localPort]));
    expect(transport.connectionCount).toBe(1);
    expect(user.connectionLost).not.toHaveBeenCalled();
  });
});
