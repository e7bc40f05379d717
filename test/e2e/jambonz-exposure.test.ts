import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { JAMBONZ_SUBPROTOCOL } from '../../plugin/jambonz/service.js';
import { linesWith } from '../support/gateway.js';
import { upgradeStatus } from '../support/upgrade-status.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Issue 13 item 3: the jambonz service path was served, unauthenticated, on the internet-facing Talkdesk listener by
// default, with ws's 100 MiB frames and no limit on sessions. It is now off by default and, when on, served on a
// listener of its own (JAMBONZ_SERVICE_HOST/PORT, loopback by default), to listed sources only, with frames and
// concurrent sockets capped.

const startGateway = gatewayPerTest();
const ENABLED = { JAMBONZ_SERVICE_PATH: '/ccai', JAMBONZ_SERVICE_PORT: '0', RTP_PORT_MIN: '24200', RTP_PORT_MAX: '24298' };

/** path tricks a proxy rule on the literal path would miss; URL parsing turns each into /ccai or /ccai/ */
const TRICKS = ['//127.0.0.1/ccai', '/x/../ccai', '/./ccai', '/ccai/.', '/%63cai'];

/** the status line of a raw request (the path is sent as written, not normalised by a client library) */
async function rawStatus(port: number, path: string, kind: 'upgrade' | 'options'): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const head =
    kind === 'upgrade'
      ? `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${JAMBONZ_SUBPROTOCOL}\r\n\r\n`
      : `OPTIONS ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n`;
  socket.write(head);
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    if (text.includes('\r\n')) socket.destroy();
  });
  await once(socket, 'close');
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

async function jambonzSocket(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ccai`, JAMBONZ_SUBPROTOCOL);
  await once(ws, 'open');
  return ws;
}

describe('the jambonz service is not on the Talkdesk listener', () => {
  it('by default: OPTIONS and jambonz upgrades on /ccai (and every path trick to it) get 404', async () => {
    const { app } = await startGateway({ RTP_PORT_MIN: '24200', RTP_PORT_MAX: '24298' });
    expect(app.jambonzPort).toBeUndefined();
    for (const path of ['/ccai', '/ccai/', ...TRICKS]) {
      expect({ path, status: await rawStatus(app.port, path, 'upgrade') }).toEqual({ path, status: 404 });
      expect({ path, status: await rawStatus(app.port, path, 'options') }).toEqual({ path, status: 404 });
    }
    expect((await fetch(`http://127.0.0.1:${app.port}/health`)).status).toBe(200);
  });

  it('when enabled, it is served on its own listener only; path tricks reach nothing there either', async () => {
    const { app } = await startGateway(ENABLED);
    expect(await rawStatus(app.port, '/ccai', 'upgrade')).toBe(404);
    expect(await rawStatus(app.port, '/ccai', 'options')).toBe(404);
    const port = app.jambonzPort!;
    expect(port).toBeGreaterThan(0);
    expect(await rawStatus(port, '/ccai', 'options')).toBe(200);
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(101);
    for (const path of TRICKS) {
      expect({ path, status: await rawStatus(port, path, 'upgrade') }).toEqual({ path, status: 404 });
      expect({ path, status: await rawStatus(port, path, 'options') }).toEqual({ path, status: 404 });
    }
  });
});

describe('the jambonz service listener', () => {
  it('refuses a source not in JAMBONZ_SERVICE_SOURCES with 403, upgrade and OPTIONS alike, logged once', async () => {
    const { app, logs } = await startGateway({ ...ENABLED, JAMBONZ_SERVICE_SOURCES: '192.0.2.0/24' });
    const port = app.jambonzPort!;
    for (let i = 0; i < 5; i++) expect(await upgradeStatus(`ws://127.0.0.1:${port}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(403);
    expect(await rawStatus(port, '/ccai', 'options')).toBe(403);
    expect(linesWith(logs, 'jambonz service refused: source not in JAMBONZ_SERVICE_SOURCES')).toHaveLength(1);
  });

  it('closes a socket that sends a frame over 1 MiB (1009) without buffering it; others and the process live', async () => {
    const { app } = await startGateway(ENABLED);
    const port = app.jambonzPort!;
    const bystander = await jambonzSocket(port);
    const ws = await jambonzSocket(port);
    const closed = once(ws, 'close');
    ws.send(Buffer.alloc(2 * 1024 * 1024, 0x20), { binary: false });
    const [code] = (await closed) as [number];
    expect(code).toBe(1009);
    expect(bystander.readyState).toBe(WebSocket.OPEN);
    bystander.terminate();
    expect((await fetch(`http://127.0.0.1:${app.port}/health`)).status).toBe(200);
  });

  it('holds at most MAX_CALLS sockets at once: the next gets 503 until one closes', async () => {
    const { app } = await startGateway({ ...ENABLED, MAX_CALLS: '3' });
    const port = app.jambonzPort!;
    const open = [await jambonzSocket(port), await jambonzSocket(port), await jambonzSocket(port)];
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(503);
    const first = open.shift()!;
    first.close();
    await once(first, 'close');
    await expect.poll(() => upgradeStatus(`ws://127.0.0.1:${port}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(101);
    for (const ws of open) ws.terminate();
  });
});
