import { connect, createServer, type Server, type Socket } from 'node:net';
import { describeConnectionFailure } from './connection-failure.js';
import type { StreamFlavor } from './transport-stream.js';
import type { Destination } from './transport.js';

/** SIP over TCP (RFC 3261 §18): plain connections; our server listens on the SIP port behind our Contact. */
export class TcpFlavor implements StreamFlavor {
  readonly protocol = 'TCP';
  /** never used: a TCP transport always listens */
  readonly unlistenedPort = 0;

  connect(peer: Destination, localAddress: string): { socket: Socket; readyEvent: 'connect' } {
    return { socket: connect({ host: peer.host, port: peer.port, localAddress }), readyEvent: 'connect' };
  }

  start(onConnection: (socket: Socket) => void): Promise<Server> {
    return Promise.resolve(createServer(onConnection));
  }

  describe(err: Error | undefined, peer: Destination): string {
    return describeConnectionFailure(err, { protocol: 'TCP', peer: `${peer.host}:${peer.port}` });
  }
}
