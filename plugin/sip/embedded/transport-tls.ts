import { readFile } from 'node:fs/promises';
import { isIP, type Server, type Socket } from 'node:net';
import { checkServerIdentity, connect, createServer, type ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { SipTlsConfig } from '../../../config/schema.js';
import { describeConnectionFailure } from './connection-failure.js';
import { DropLog } from './drop-log.js';
import type { StreamFlavor } from './transport-stream.js';
import type { Destination } from './transport.js';

/** RFC 3261 §19.1.2: the default port of sips: URIs, advertised when no listener has a port of its own */
const DEFAULT_SIPS_PORT = 5061;
/** TLS 1.0 and 1.1 are deprecated (RFC 8996) */
const MIN_TLS_VERSION = 'TLSv1.2';
/**
 * From the TCP accept on SIP_TLS_PORT to the end of the TLS handshake; Node's default is 120 s. A bot opening a
 * connection for its BYE finishes in a round trip or two, so this only cuts off a client that connects and sends
 * nothing or part of a ClientHello (handshake bytes do not restart it). A constant, not a setting.
 */
export const SIP_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsFlavorOptions {
  tls: SipTlsConfig;
  /** CCAI_SIP_HOST: the name the server certificate must carry unless tls.serverName says otherwise */
  ccaiHost: string;
  log: Logger;
  /** tests shorten it; SIP_TLS_HANDSHAKE_TIMEOUT_MS otherwise */
  handshakeTimeoutMs?: number;
}

interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5922): every connection to CCAI verifies its certificate chain and name unless
 * CCAI_TLS_VERIFY=false, presents our certificate when one is configured (mutual TLS), and a listener on
 * SIP_TLS_PORT serves the same certificate behind our Contact for a bot that opens a new connection for its BYE.
 */
export class TlsFlavor implements StreamFlavor {
  readonly protocol = 'TLS';
  private client: ConnectionOptions | undefined;
  private readonly refusedHandshakes: DropLog;

  constructor(private readonly opts: TlsFlavorOptions) {
    this.refusedHandshakes = new DropLog(opts.log, 'incoming SIP TLS handshake failed');
  }

  get unlistenedPort(): number {
    return this.opts.tls.port || DEFAULT_SIPS_PORT;
  }

  /** the name checked in the CCAI certificate and sent as SNI */
  private get expectedName(): string {
    return this.opts.tls.serverName ?? this.opts.ccaiHost;
  }

  async start(onConnection: (socket: Socket) => void): Promise<Server | undefined> {
    const { tls, log } = this.opts;
    const files = await readTlsFiles(tls);
    this.client = this.clientOptions(files);
    if (!tls.verify) {
      log.warn('CCAI_TLS_VERIFY=false: the CCAI SIP server certificate is NOT verified; anyone on the path can impersonate it');
    }
    if (!files.cert || !files.key) {
      log.warn(
        'no SIP_TLS_CERT_FILE/SIP_TLS_KEY_FILE: no SIP TLS listener, so the bot must send its in-dialog requests (its BYE) over the connection we opened',
      );
      return undefined;
    }
    const handshakeTimeout = this.opts.handshakeTimeoutMs ?? SIP_TLS_HANDSHAKE_TIMEOUT_MS;
    const server = createServer({ cert: files.cert, key: files.key, minVersion: MIN_TLS_VERSION, handshakeTimeout }, onConnection);
    // tls.Server only reports a failed or timed-out handshake (ERR_TLS_HANDSHAKE_TIMEOUT): closing is ours to do
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      this.refusedHandshakes.note(err.code ?? err.message, { peer: `${socket.remoteAddress}:${socket.remotePort}` });
      socket.destroy();
    });
    return server;
  }

  connect(peer: Destination, localAddress: string): { socket: Socket; readyEvent: 'secureConnect' } {
    if (!this.client) throw new Error('TLS transport not started');
    // tls.connect hands localAddress to net.connect (lib/_tls_wrap.js); @types/node 20 leaves it out of the type
    const socket = connect({ host: peer.host, port: peer.port, localAddress, ...this.client } as ConnectionOptions);
    if (!this.opts.tls.verify) {
      socket.once('secureConnect', () =>
        this.opts.log.warn(
          { peer: `${peer.host}:${peer.port}`, authorizationError: socket.authorizationError ?? null },
          'CCAI_TLS_VERIFY=false: SIP TLS connection not verified',
        ),
      );
    }
    return { socket, readyEvent: 'secureConnect' };
  }

  describe(err: Error | undefined, peer: Destination, end: { closedRightAfterHandshake: boolean }): string {
    return describeConnectionFailure(err, {
      protocol: 'TLS',
      peer: `${peer.host}:${peer.port}`,
      expectedName: this.expectedName,
      clientCertificate: this.client?.cert !== undefined,
      closedRightAfterHandshake: end.closedRightAfterHandshake,
    });
  }

  /**
   * The name is checked by node's checkServerIdentity (DNS names against DNS SANs, an IP against IP SANs) because
   * we connect to a resolved address, not to the name. SNI carries names only (RFC 6066 §3 forbids IP literals).
   */
  private clientOptions(files: TlsFiles): ConnectionOptions {
    const name = this.expectedName;
    return {
      minVersion: MIN_TLS_VERSION,
      rejectUnauthorized: this.opts.tls.verify,
      ...(files.ca ? { ca: files.ca } : {}),
      ...(files.cert && files.key ? { cert: files.cert, key: files.key } : {}),
      ...(isIP(name) ? {} : { servername: name }),
      checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
    };
  }
}

async function readTlsFiles(tls: SipTlsConfig): Promise<TlsFiles> {
  const [ca, cert, key] = await Promise.all([
    readSetting('CCAI_TLS_CA_FILE', tls.caFile),
    readSetting('SIP_TLS_CERT_FILE', tls.certFile),
    readSetting('SIP_TLS_KEY_FILE', tls.keyFile),
  ]);
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

async function readSetting(setting: string, path: string | undefined): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`cannot read ${setting} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}
