import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { DropLog } from './drop-log.js';
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
  /** a connection not `inUse()` for this long is closed; whole messages while in use restart it */
  idleCloseMs: number;
  /** a message must be complete this long after its first byte, or the connection is closed */
  messageDeadlineMs: number;
  /** connections cut for what their peer sent, logged at the drop rate across the transport */
  cut: DropLog;
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
 *
 * Only whole messages, on a connection a transaction or dialog uses, count as traffic: CRLF keep-alives (RFC 5626
 * §3.5.1), the bytes of a message still arriving and whatever an unused connection carries do not restart the idle
 * time, so an unused connection closes `idleCloseMs` after it was last used whatever its peer sends; and a message
 * must be complete within `messageDeadlineMs` of its first byte, so no one holds a used one by trickling bytes.
 */
export class StreamConnection {
  readonly ready: Promise<void>;
  private upAt: number | undefined;
  private receivedAny = false;
  private byUs = false;
  private error: Error | undefined;
  private idle: NodeJS.Timeout | undefined;
  /** runs while a message is partly received */
  private deadline: NodeJS.Timeout | undefined;
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
      clearTimeout(this.deadline);
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
    this.keepIfUsed();
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
    const { messages, error } = this.framer.push(chunk);
    if (messages.length > 0) {
      // the message whose deadline ran is done; what is left, if anything, is a new one, timed from now
      clearTimeout(this.deadline);
      this.deadline = undefined;
    }
    if (this.framer.pending && this.deadline === undefined && error === undefined) {
      this.deadline = setTimeout(() => this.tooSlow(), this.opts.messageDeadlineMs);
    }
    for (const message of messages) this.opts.onMessage(message);
    if (messages.length > 0) this.keepIfUsed();
    if (error !== undefined) {
      this.opts.log.warn({ peer: this.peer, reason: error }, 'SIP stream cannot be framed: connection closed');
      // not `byUs`: transactions waiting for an answer on it must fail now
      this.error ??= new Error(`the peer sent a stream that is not SIP (${error})`);
      this.socket.destroy();
    }
  }

  /**
   * Traffic restarts the idle time only while a transaction or dialog uses the peer: what an unused connection
   * carries (OPTIONS pings and their 200s, requests for dialogs that do not exist) cannot keep it open.
   */
  private keepIfUsed(): void {
    if (this.opts.inUse()) this.idle?.refresh();
  }

  private tooSlow(): void {
    this.opts.cut.note(`message not complete within ${this.opts.messageDeadlineMs} ms of its first byte`, {
      peer: `${this.peer.host}:${this.peer.port}`,
    });
    this.error ??= new Error(`the peer sent a message too slowly (not complete within ${this.opts.messageDeadlineMs} ms)`);
    this.socket.destroy();
  }
}
