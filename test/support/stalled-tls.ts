import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** How a TLS client can stall a server's handshake. */
export type StallMode = 'silent' | 'partial-hello' | 'trickled-hello';
export const STALL_MODES: readonly StallMode[] = ['silent', 'partial-hello', 'trickled-hello'];

/** A real ClientHello, as node:tls sends it: caught by a plain TCP server that never answers. */
export async function captureClientHello(): Promise<Buffer> {
  const catcher = createServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  const caught = new Promise<Buffer>((resolve) => catcher.once('connection', (s: Socket) => s.once('data', resolve)));
  const client = tlsConnect({ host: '127.0.0.1', port: (catcher.address() as AddressInfo).port, servername: 'stall.test' });
  client.on('error', () => undefined);
  try {
    return await caught;
  } finally {
    client.destroy();
    catcher.close();
  }
}

export interface StalledClient {
  mode: StallMode;
  /** ms from connect to the server closing the connection */
  closedAfterMs: Promise<number>;
  /** bytes the client got back: nothing for a stalled handshake (no ServerHello without a whole ClientHello) */
  received(): number;
  destroy(): void;
}

/**
 * A raw TCP client that opens a TLS handshake and never finishes it: sends nothing, half a ClientHello, or the first
 * half one byte every `trickleMs` (activity that must not keep the connection alive).
 */
export async function stallHandshake(port: number, mode: StallMode, hello: Buffer, trickleMs = 50): Promise<StalledClient> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const t0 = performance.now();
  let received = 0;
  socket.on('data', (d: Buffer) => (received += d.length));
  const half = hello.subarray(0, Math.floor(hello.length / 2));
  let trickle: NodeJS.Timeout | undefined;
  if (mode === 'partial-hello') socket.write(half);
  if (mode === 'trickled-hello') {
    let sent = 0;
    trickle = setInterval(() => {
      if (sent < half.length && socket.writable) socket.write(half.subarray(sent, ++sent));
    }, trickleMs);
  }
  const closedAfterMs = new Promise<number>((resolve) =>
    socket.once('close', () => {
      clearInterval(trickle);
      resolve(performance.now() - t0);
    }),
  );
  return {
    mode,
    closedAfterMs,
    received: () => received,
    destroy: () => {
      clearInterval(trickle);
      socket.destroy();
    },
  };
}
