import { isIP, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
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
  /** a connection no transaction or dialog uses is closed after this long without traffic */
  idleCloseMs: number;
}

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
  private server: Server | undefined;
  private user: TransportUser | undefined;

  constructor(
    private readonly flavor: StreamFlavor,
    private readonly opts: StreamTransportOptions,
  ) {
    this.family = isIP(opts.bindAddress) === 6 ? 6 : 4;
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
    this.opts.log.debug({ peer: `${remoteAddress}:${remotePort}` }, `SIP ${this.protocol} connection accepted`);
    this.track({ host: remoteAddress, port: remotePort }, socket, undefined);
  }

  private track(peer: Destination, socket: Socket, readyEvent: 'connect' | 'secureConnect' | undefined): StreamConnection {
    const key = keyOf(peer);
    const connection: StreamConnection = new StreamConnection(peer, socket, readyEvent, {
      log: this.opts.log,
      idleCloseMs: this.opts.idleCloseMs,
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
