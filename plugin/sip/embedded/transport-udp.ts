import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Destination, SipTransport, TransportUser } from './transport.js';

/** SIP over UDP (RFC 3261 §18): one datagram is one message, so there is no framing. */
export class UdpTransport implements SipTransport {
  readonly protocol = 'UDP';
  readonly reliable = false;
  readonly family: 4 | 6;
  private socket: Socket | undefined;

  constructor(
    private readonly bindAddress: string,
    private readonly port: number,
  ) {
    this.family = isIP(bindAddress) === 6 ? 6 : 4;
  }

  get localPort(): number {
    if (!this.socket) throw new Error('UDP transport not started');
    return this.socket.address().port;
  }

  start(user: TransportUser): Promise<void> {
    const socket = createSocket(this.family === 6 ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.port, this.bindAddress, () => {
        socket.off('error', reject);
        // After bind, socket errors are per-send (reported to send's callback); nothing else may crash the process.
        socket.on('error', () => undefined);
        socket.on('message', (data, rinfo) => user.receive(data, { host: rinfo.address, port: rinfo.port }));
        this.socket = socket;
        resolve();
      });
    });
  }

  send(data: string, dest: Destination): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('UDP transport not started'));
    return new Promise((resolve, reject) => {
      socket.send(data, dest.port, dest.host, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}
