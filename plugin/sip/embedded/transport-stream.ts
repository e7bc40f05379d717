import { isIP, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { DropLog } from './drop-log.js';
import { StreamConnection, type ConnectionEnd } from './stream-connection.js';
import type { Destination, SipTransport, TransportUser } from './transport.js';

/** What differs between SIP over TCP and over TLS: how connections are opened, accepted and explained. */
export interface StreamFlavor {
  readonly protocol: 'TCP' | 'TLS';
  /** Starts a connection to `peer`; it carries SIP after `readyEvent` (TLS: handshake done, server verified). */
  connect(peer: Destination, localAddress: string): { socket: Socket; readyEvent: 'connect' | 'secureConnect' };
  /**
   * Prepares the flavor (TLS: reads its certificates) and returns the server for connections a peer opens to our
   * Contact, not yet listening, or undefined when we cannot offer one (TLS without a certificate). Rejects with a
   * message naming the setting at fault.
   */
  start(onConnection: (socket: Socket) => void): Promise<Server | undefined>;
  /** the port advertised in Via/Contact when there is no server */
  readonly unlistenedPort: number;
  /** operator words for a connection that failed or was lost */
  describe(err: Error | undefined, peer: Destination, end: Pick<ConnectionEnd, 'closedRightAfterHandshake'>): string;
}

export interface StreamTransportOptions {
  bindAddress: string;
  /** the listening port; 0 = any */
  port: number;
  log: Logger;
  /** a connection no transaction or dialog uses is closed after this long without a whole message */
  idleCloseMs: number;
  /** tests shorten or lower these; production uses STREAM_LIMITS */
  messageDeadlineMs?: number;
  maxPerSource?: number;
  maxAccepted?: number;
}

/**
 * What one peer can hold of us over a stream transport. A connection costs a file descriptor, and a process commonly
 * gets 1,024 of them, shared with every Talkdesk WebSocket and two RTP sockets per call: so connections peers open
 * to us are capped well below that, in total and per source address (a bot platform needs a few, for the in-dialog
 * requests it sends on new connections). Our own connections to CCAI are not counted: we open them for our calls.
 */
export const STREAM_LIMITS = {
  /** a SIP message arrives in one or a few segments; 5 s is a long stall even for a lossy path */
  messageDeadlineMs: 5_000,
  maxPerSource: 32,
  maxAccepted: 128,
};

/**
 * SIP over a stream (RFC 3261 §18): one connection per peer address, opened on the first message to it and reused
 * by every transaction and dialog that sends there (INVITE, ACK, CANCEL, BYE). Messages arriving on any connection
 * go to the same stack, tagged with the connection's peer, so responses go back over the connection the request
 * came on (§18.2.2). A server on our Via/Contact port takes connections a peer opens for its in-dialog requests.
 */
export class StreamTransport implements SipTransport {
  readonly reliable = true;
  readonly family: 4 | 6;
  private readonly connections = new Map<string, StreamConnection>();
  /** connections peers opened to us, by source address, and their total */
  private readonly acceptedFrom = new Map<string, number>();
  private acceptedTotal = 0;
  /** connections refused or cut for what their peer did: one log line per interval, not per connection */
  private readonly cut: DropLog;
  readonly caps: { maxPerSource: number; maxAccepted: number };
  private server: Server | undefined;
  private user: TransportUser | undefined;

  constructor(
    private readonly flavor: StreamFlavor,
    private readonly opts: StreamTransportOptions,
  ) {
    this.family = isIP(opts.bindAddress) === 6 ? 6 : 4;
    this.caps = {
      maxPerSource: opts.maxPerSource ?? STREAM_LIMITS.maxPerSource,
      maxAccepted: opts.maxAccepted ?? STREAM_LIMITS.maxAccepted,
    };
    this.cut = new DropLog(opts.log, `SIP ${flavor.protocol} connection refused or closed for what its peer did`);
  }

  get protocol(): 'TCP' | 'TLS' {
    return this.flavor.protocol;
  }

  get localPort(): number {
    if (!this.user) throw new Error(`${this.protocol} transport not started`);
    const address = this.server?.address();
    return typeof address === 'object' && address !== null ? address.port : this.flavor.unlistenedPort;
  }

  /** connections open or opening now */
  get connectionCount(): number {
    return this.connections.size;
  }

  async start(user: TransportUser): Promise<void> {
    const server = await this.flavor.start((socket) => this.accept(socket));
    if (server) {
      // Node refuses connections past this before they cost a TLS handshake; accept() then counts sources
      server.maxConnections = this.caps.maxAccepted;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.opts.port, this.opts.bindAddress, () => {
          server.off('error', reject);
          server.on('error', (err) => this.opts.log.error({ err }, `SIP ${this.protocol} listener failed`));
          resolve();
        });
      });
    }
    this.server = server;
    this.user = user;
  }

  async send(data: string, dest: Destination): Promise<void> {
    if (!this.user) throw new Error(`${this.protocol} transport not started`);
    const connection = this.connections.get(keyOf(dest)) ?? this.open(dest);
    try {
      await connection.write(data);
    } catch (err) {
      throw new Error(this.flavor.describe(err as Error, dest, { closedRightAfterHandshake: false }), { cause: err });
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.user = undefined;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private open(peer: Destination): StreamConnection {
    const { socket, readyEvent } = this.flavor.connect(peer, this.opts.bindAddress);
    this.opts.log.debug({ peer: `${peer.host}:${peer.port}` }, `SIP ${this.protocol} connection opened`);
    return this.track(peer, socket, readyEvent);
  }

  private accept(socket: Socket): void {
    const { remoteAddress, remotePort } = socket;
    if (!this.user || remoteAddress === undefined || remotePort === undefined) {
      socket.destroy();
      return;
    }
    const peer = `${remoteAddress}:${remotePort}`;
    const fromSource = this.acceptedFrom.get(remoteAddress) ?? 0;
    const full =
      this.acceptedTotal >= this.caps.maxAccepted
        ? `${this.caps.maxAccepted} connections open to us already`
        : fromSource >= this.caps.maxPerSource
          ? `${this.caps.maxPerSource} connections from this address already`
          : undefined;
    if (full) {
      socket.destroy();
      this.cut.note(full, { peer });
      return;
    }
    this.acceptedFrom.set(remoteAddress, fromSource + 1);
    this.acceptedTotal++;
    socket.once('close', () => {
      this.acceptedTotal--;
      const left = (this.acceptedFrom.get(remoteAddress) ?? 1) - 1;
      if (left > 0) this.acceptedFrom.set(remoteAddress, left);
      else this.acceptedFrom.delete(remoteAddress);
    });
    this.opts.log.debug({ peer }, `SIP ${this.protocol} connection accepted`);
    this.track({ host: remoteAddress, port: remotePort }, socket, undefined);
  }

  private track(peer: Destination, socket: Socket, readyEvent: 'connect' | 'secureConnect' | undefined): StreamConnection {
    const key = keyOf(peer);
    const connection: StreamConnection = new StreamConnection(peer, socket, readyEvent, {
      log: this.opts.log,
      idleCloseMs: this.opts.idleCloseMs,
      messageDeadlineMs: this.opts.messageDeadlineMs ?? STREAM_LIMITS.messageDeadlineMs,
      cut: this.cut,
      inUse: () => this.user?.uses(peer) ?? false,
      onMessage: (data) => this.user?.receive(data, peer),
      onEnd: (end) => {
        if (this.connections.get(key) === connection) this.connections.delete(key);
        if (end.wasUp && !end.byUs) this.user?.connectionLost(peer, new Error(this.flavor.describe(end.error, peer, end)));
      },
    });
    this.connections.set(key, connection);
    return connection;
  }
}

function keyOf(dest: Destination): string {
  return `${dest.host}|${dest.port}`;
}
