import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { StreamFramer } from './stream-framer.js';
import type { Destination } from './transport.js';

/** How a connection ended, for the transport to decide whether transactions on it failed. */
export interface ConnectionEnd {
  /** the connection had carried SIP (TLS: handshake done); if not, `ready` rejected instead */
  readonly wasUp: boolean;
  /** we closed it because it was idle or the transport stopped: nothing was waiting on it */
  readonly byUs: boolean;
  readonly error: Error | undefined;
  /** the peer closed it before sending a byte within RIGHT_AFTER_HANDSHAKE_MS of the handshake */
  readonly closedRightAfterHandshake: boolean;
}

export interface StreamConnectionOptions {
  log: Logger;
  /** an idle connection is closed after this long unless `inUse()` */
  idleCloseMs: number;
  inUse(): boolean;
  onMessage(data: Buffer): void;
  /** called once, when the socket has closed */
  onEnd(end: ConnectionEnd): void;
}

/** A TLS server that wants a client certificate rejects ours (or its absence) just after the handshake (RFC 8446 §4.4.2.4). */
const RIGHT_AFTER_HANDSHAKE_MS = 2_000;

/**
 * One TCP or TLS connection carrying SIP: frames what arrives (§18.3), writes whole messages, and closes itself
 * once idle while no transaction or dialog uses its peer. An unframable stream closes it with a log line.
 */
export class StreamConnection {
  readonly ready: Promise<void>;
  private upAt: number | undefined;
  private receivedAny = false;
  private byUs = false;
  private error: Error | undefined;
  private idle: NodeJS.Timeout | undefined;
  private readonly framer = new StreamFramer();

  /** `readyEvent` for a connection we open; none for one a peer opened, which is up already */
  constructor(
    readonly peer: Destination,
    private readonly socket: Socket,
    readyEvent: 'connect' | 'secureConnect' | undefined,
    private readonly opts: StreamConnectionOptions,
  ) {
    let rejectReady: (err: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      rejectReady = reject;
      if (readyEvent === undefined) this.up(resolve);
      else socket.once(readyEvent, () => this.up(resolve));
    });
    // a rejection is reported to every send waiting on it; none may be left unhandled when no send waits
    this.ready.catch(() => undefined);
    socket.on('error', (err) => {
      this.error ??= err;
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.once('close', () => {
      clearTimeout(this.idle);
      if (this.upAt === undefined) rejectReady(this.error ?? new Error('connection closed before it was up'));
      opts.onEnd({
        wasUp: this.upAt !== undefined,
        byUs: this.byUs,
        error: this.error,
        closedRightAfterHandshake:
          this.upAt !== undefined && !this.receivedAny && performance.now() - this.upAt < RIGHT_AFTER_HANDSHAKE_MS,
      });
    });
  }

  /** Resolves once the message is handed to the OS; rejects when the connection is down or could not be opened. */
  async write(data: string): Promise<void> {
    await this.ready;
    this.idle?.refresh();
    await new Promise<void>((resolve, reject) => {
      if (this.socket.destroyed) reject(this.error ?? new Error('connection closed'));
      else this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    this.byUs = true;
    this.socket.destroy();
  }

  private up(resolve: () => void): void {
    this.upAt = performance.now();
    this.idle = setTimeout(() => this.closeIfIdle(), this.opts.idleCloseMs);
    resolve();
  }

  private closeIfIdle(): void {
    if (this.opts.inUse()) {
      this.idle?.refresh();
      return;
    }
    this.opts.log.debug({ peer: this.peer }, 'idle SIP connection closed');
    this.close();
  }

  private receive(chunk: Buffer): void {
    this.receivedAny = true;
    this.idle?.refresh();
    const { messages, error } = this.framer.push(chunk);
    for (const message of messages) this.opts.onMessage(message);
    if (error !== undefined) {
      this.opts.log.warn({ peer: this.peer, reason: error }, 'SIP stream cannot be framed: connection closed');
      // not `byUs`: transactions waiting for an answer on it must fail now
      this.error ??= new Error(`the peer sent a stream that is not SIP (${error})`);
      this.socket.destroy();
    }
  }
}
