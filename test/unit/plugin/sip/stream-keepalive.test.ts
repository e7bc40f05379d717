import { EventEmitter, once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DropLog } from '../../../../plugin/sip/embedded/drop-log.js';
import { StreamConnection, type ConnectionEnd } from '../../../../plugin/sip/embedded/stream-connection.js';
import { StreamTransport } from '../../../../plugin/sip/embedded/transport-stream.js';
import { TcpFlavor } from '../../../../plugin/sip/embedded/transport-tcp.js';
import type { Destination, TransportUser } from '../../../../plugin/sip/embedded/transport.js';
import { capturedLog } from '../../../support/captured-log.js';
import { testLog } from './fake-uas.js';

// Issue 13 item 4: SIP TCP/TLS connections were held open forever by keep-alives (CRLF every 3 s, or one byte at a
// time), and there was no cap on them: 1,001 such connections starved the process of file descriptors. Only whole
// messages count as traffic now, a message must be complete within a deadline from its first byte, and accepted
// connections are capped per source and in total.

const IDLE_MS = 5_000;
const DEADLINE_MS = 5_000;

/** What StreamConnection uses of a net.Socket: data in, close out. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  write(_data: string, done: (err?: Error) => void): boolean {
    done();
    return true;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.nextTick(() => this.emit('close'));
  }
}

const OPTIONS = [
  'OPTIONS sip:talkdesk@127.0.0.1 SIP/2.0',
  'Via: SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK-ka',
  'From: <sip:bot@192.0.2.7>;tag=1',
  'To: <sip:talkdesk@127.0.0.1>',
  'Call-ID: keepalive-1',
  'CSeq: 1 OPTIONS',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

function accepted(inUse: () => boolean): { socket: FakeSocket; messages: Buffer[]; ended: ConnectionEnd[] } {
  const socket = new FakeSocket();
  const messages: Buffer[] = [];
  const ended: ConnectionEnd[] = [];
  new StreamConnection({ host: '192.0.2.7', port: 40000 }, socket as unknown as Socket, undefined, {
    log: testLog,
    idleCloseMs: IDLE_MS,
    messageDeadlineMs: DEADLINE_MS,
    cut: new DropLog(testLog, 'cut'),
    inUse,
    onMessage: (data) => messages.push(data),
    onEnd: (end) => ended.push(end),
  });
  return { socket, messages, ended };
}

/** Advances fake time by `totalMs` in `stepMs` steps, calling `each` at every step; stops once the socket closed. */
async function every(stepMs: number, totalMs: number, socket: FakeSocket, each: (i: number) => void): Promise<void> {
  for (let t = 0, i = 0; t < totalMs && !socket.destroyed; t += stepMs, i++) {
    each(i);
    await vi.advanceTimersByTimeAsync(stepMs);
  }
}

describe('StreamConnection: what keeps a connection open', () => {
  afterEach(() => vi.useRealTimers());

  it('CRLF keep-alives every 3 s do not keep an unused connection open: closed at the idle time', async () => {
    vi.useFakeTimers();
    const c = accepted(() => false);
    const start = Date.now();
    await every(3_000, 60_000, c.socket, () => c.socket.emit('data', Buffer.from('\r\n\r\n')));
    await vi.advanceTimersByTimeAsync(0);
    expect(c.socket.destroyed).toBe(true);
    expect(Date.now() - start).toBeLessThanOrEqual(IDLE_MS + 3_000);
    expect(c.ended).toEqual([expect.objectContaining({ byUs: true })]);
  });

  it('a message sent one byte a second is cut at its deadline, even on a connection a dialog uses', async () => {
    vi.useFakeTimers();
    const { log, lines } = capturedLog();
    const socket = new FakeSocket();
    const messages: Buffer[] = [];
    new StreamConnection({ host: '192.0.2.7', port: 40000 }, socket as unknown as Socket, undefined, {
      log,
      idleCloseMs: IDLE_MS,
      messageDeadlineMs: DEADLINE_MS,
      cut: new DropLog(log, 'SIP connection cut'),
      inUse: () => true,
      onMessage: (data) => messages.push(data),
      onEnd: () => undefined,
    });
    const start = Date.now();
    await every(1_000, 60_000, socket, (i) => socket.emit('data', Buffer.from(OPTIONS[i % OPTIONS.length]!)));
    expect(socket.destroyed).toBe(true);
    expect(Date.now() - start).toBeLessThanOrEqual(DEADLINE_MS + 1_000);
    expect(messages).toHaveLength(0);
    expect(lines.filter((l) => /not complete within 5000 ms/.test(String(l['reason'])))).toHaveLength(1);
  });

  it('whole messages keep a used connection open; a message split over chunks within the deadline is fine', async () => {
    vi.useFakeTimers();
    const c = accepted(() => true);
    const half = OPTIONS.length >> 1;
    await every(2_000, 30_000, c.socket, () => {
      c.socket.emit('data', Buffer.from(OPTIONS.slice(0, half)));
      c.socket.emit('data', Buffer.from(OPTIONS.slice(half)));
    });
    expect(c.socket.destroyed).toBe(false);
    expect(c.messages).toHaveLength(15);
    c.socket.destroy();
  });

  it('an unused connection is closed at the idle time even while it sends whole OPTIONS pings every second', async () => {
    vi.useFakeTimers();
    const c = accepted(() => false);
    const start = Date.now();
    await every(1_000, 30_000, c.socket, () => c.socket.emit('data', Buffer.from(OPTIONS)));
    await vi.advanceTimersByTimeAsync(0);
    expect(c.socket.destroyed).toBe(true);
    expect(Date.now() - start).toBeLessThanOrEqual(IDLE_MS + 1_000);
    expect(c.messages.length).toBeGreaterThan(0);
  });
});

describe('StreamTransport: accepted connections are capped per source and in total', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const user: TransportUser = { receive: () => undefined, uses: () => false, connectionLost: () => undefined };

  async function listening(caps: { maxPerSource: number; maxAccepted: number }): Promise<StreamTransport> {
    const transport = new StreamTransport(new TcpFlavor(), { bindAddress: '127.0.0.1', port: 0, log: testLog, idleCloseMs: 60_000, ...caps });
    await transport.start(user);
    cleanups.push(() => transport.close());
    return transport;
  }

  async function open(port: number, localAddress: string): Promise<Socket> {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    cleanups.push(() => socket.destroy());
    await once(socket, 'connect');
    return socket;
  }

  /** whether the server closed `socket` within a short while */
  async function closedByServer(socket: Socket): Promise<boolean> {
    if (socket.closed) return true;
    return Promise.race([once(socket, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
  }

  it('past maxPerSource, a source\'s next connection is closed at once; another source still gets in', async () => {
    const transport = await listening({ maxPerSource: 3, maxAccepted: 10 });
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push(await open(transport.localPort, '127.0.0.1'));
    const closed = await Promise.all(mine.map(closedByServer));
    expect(closed.filter(Boolean)).toHaveLength(2);
    const other = await open(transport.localPort, '127.0.0.2');
    expect(await closedByServer(other)).toBe(false);
    expect(transport.connectionCount).toBe(4);
  });

  it('past maxAccepted in total, new connections are closed at once, whatever their source', async () => {
    const transport = await listening({ maxPerSource: 3, maxAccepted: 4 });
    const sockets = [];
    for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) for (let i = 0; i < 2; i++) sockets.push(await open(transport.localPort, host));
    const closed = await Promise.all(sockets.map(closedByServer));
    expect(closed.filter(Boolean)).toHaveLength(2);
    expect(transport.connectionCount).toBe(4);
  });

  it('the default caps stay far below the 1,024 descriptors a process commonly gets', () => {
    const transport = new StreamTransport(new TcpFlavor(), { bindAddress: '127.0.0.1', port: 0, log: testLog, idleCloseMs: 1 });
    expect(transport.caps.maxAccepted).toBeLessThanOrEqual(256);
    expect(transport.caps.maxPerSource).toBeLessThan(transport.caps.maxAccepted);
  });
});

export type { Destination };

describe('EmbeddedSipBackend over TCP: a keep-alive flood', () => {
  it('60 connections sending CRLF every 100 ms: at most 32 held, all closed at the idle time, the stack unharmed', async () => {
    const { loopbackBackend } = await import('./backend-fixture.js');
    const backend = loopbackBackend({ transport: 'tcp', idleConnectionMs: 300 });
    await backend.start();
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const socket = connect({ port: backend.localPort, host: '127.0.0.1' });
        socket.on('error', () => undefined);
        sockets.push(socket);
      }
      await Promise.all(sockets.map((s) => once(s, 'connect').catch(() => undefined)));
      const pinger = setInterval(() => {
        for (const s of sockets) if (!s.destroyed) s.write('\r\n\r\n');
      }, 100);
      let most = 0;
      const start = Date.now();
      while (Date.now() - start < 1_500) {
        most = Math.max(most, backend.openConnections);
        await new Promise((r) => setTimeout(r, 50));
      }
      clearInterval(pinger);
      expect(most).toBeLessThanOrEqual(32);
      expect(backend.openConnections).toBe(0);
      expect(sockets.every((s) => s.destroyed || s.readableEnded)).toBe(true);
    } finally {
      for (const s of sockets) s.destroy();
      await backend.stop();
    }
  });
});
