import { once } from 'node:events';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { parseSipMessage, type IncomingMessage } from '../../../../plugin/sip/embedded/message.js';
import { StreamFramer } from '../../../../plugin/sip/embedded/stream-framer.js';

export interface StreamReceived {
  readonly message: IncomingMessage;
  readonly raw: string;
  /** the connection it came on, to answer on it */
  readonly socket: Socket;
}

/**
 * A UAS on a TCP or TLS server (the test passes `node:tls` createServer for TLS): frames what the backend sends on
 * each connection it opens, and lets the test answer on that connection or open a new one to the backend.
 */
export class StreamPeer {
  readonly received: StreamReceived[] = [];
  readonly sockets: Socket[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly server: Server) {}

  /** `make` builds the server from a connection handler; plain TCP by default */
  static async start(make: (onSocket: (s: Socket) => void) => Server = (h) => createTcpServer(h)): Promise<StreamPeer> {
    let peer: StreamPeer | undefined;
    const server = make((socket) => peer!.adopt(socket));
    peer = new StreamPeer(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return peer;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  adopt(socket: Socket): void {
    this.sockets.push(socket);
    const framer = new StreamFramer();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const data of framer.push(chunk).messages) {
        const parsed = parseSipMessage(data);
        if (!parsed.ok) throw new Error(`stream peer got an unparseable message: ${parsed.reason}`);
        this.received.push({ message: parsed.message, raw: data.toString(), socket });
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** a new connection to `port` (the backend's listener), as a bot opening one for its BYE does; TCP by default */
  async connectTo(port: number, open: (port: number) => [Socket, string] = (p) => [tcpConnect({ host: '127.0.0.1', port: p }), 'connect']): Promise<Socket> {
    const [socket, readyEvent] = open(port);
    await once(socket, readyEvent);
    this.adopt(socket);
    return socket;
  }

  async next(what: string, timeoutMs = 2000): Promise<StreamReceived> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.received.findIndex((r) => (r.message.sip.method ?? String(r.message.sip.status)) === what);
      if (at >= 0) return this.received.splice(at, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stream peer: no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** answers `request` on the connection it came on */
  reply(request: StreamReceived, status: number, reason: string, body = ''): void {
    const { sip } = request.message;
    const to = request.message.toTag ? sip.get('to')! : `${sip.get('to')!};tag=peer1`;
    const head = [`SIP/2.0 ${status} ${reason}`, `Via: ${sip.get('via')!}`, `From: ${sip.get('from')!}`, `To: ${to}`];
    const contact = `Contact: <sip:bot@127.0.0.1:${this.port};transport=${request.message.via.transport.toLowerCase()}>`;
    const type = body ? ['Content-Type: application/sdp'] : [];
    const tail = [`Call-ID: ${request.message.callId}`, `CSeq: ${sip.get('cseq')!}`, contact, ...type];
    request.socket.write([...head, ...tail, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n'));
  }

  /** a BYE from the bot in the dialog `invite` created, written on `socket` */
  bye(invite: StreamReceived, socket: Socket): void {
    const { sip } = invite.message;
    const target = /<([^>]+)>/.exec(sip.get('contact')!)![1]!;
    socket.write(
      [
        `BYE ${target} SIP/2.0`,
        'Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKpeerbye',
        `From: ${sip.get('to')!};tag=peer1`,
        `To: ${sip.get('from')!}`,
        `Call-ID: ${invite.message.callId}`,
        'CSeq: 2 BYE',
        'X-Escalate: true',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
