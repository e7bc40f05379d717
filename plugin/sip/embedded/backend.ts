import type { Logger } from 'pino';
import type { SipTlsConfig } from '../../../config/schema.js';
import type { InviteRequest, OutgoingInvite, SipBackend } from '../backend.js';
import { SipFailure } from '../errors.js';
import { ccaiSourcesOf } from '../dialog-peer.js';
import { InviteSession } from './invite-session.js';
import { sendOptions, type OptionsAnswer } from './options-ping.js';
import { SipStack } from './stack.js';
import { TargetResolver } from './target-resolver.js';
import { resolveSipTimers, type SipTimers } from './timers.js';
import type { SipTransport } from './transport.js';
import { StreamTransport } from './transport-stream.js';
import { TcpFlavor } from './transport-tcp.js';
import { TlsFlavor } from './transport-tls.js';
import { UdpTransport } from './transport-udp.js';

export interface EmbeddedSipBackendOptions {
  bindAddress: string;
  /** UDP and TCP: the SIP port, 0 = an ephemeral port (see localPort). TLS listens on `tls.port` instead. */
  port: number;
  /** host put in Via, From and Contact (the address the bot can reach us at) */
  advertisedAddress: string;
  transport: 'udp' | 'tcp' | 'tls';
  /** required with transport 'tls' */
  tls?: SipTlsConfig;
  /** CCAI_SIP_HOST, required with transport 'tls': the name its certificate must carry unless tls.serverName */
  ccaiHost?: string;
  /** TCP/TLS: a connection no transaction or dialog uses is closed after this long without traffic */
  idleConnectionMs?: number;
  log: Logger;
  /** RFC 3261 timer overrides, for tests; unset ones keep RFC values derived from T1/T4 */
  timers?: Partial<SipTimers>;
  /** for tests: how long one second of an RFC 4028 Session-Expires lasts (default 1000 ms) */
  sessionSecondMs?: number;
  userAgent?: string;
  /** CCAI_SOURCE_ADDRESSES: addresses and CIDR ranges that may act in any dialog besides its own peer (../dialog-peer.ts) */
  ccaiSourceAddresses?: readonly string[];
  /** CCAI_DNS_SERVERS: `ip[:port]` entries for the RFC 3263 lookups; empty or unset: the system's resolvers */
  dnsServers?: readonly string[];
  /** CCAI_TARGET_TIMEOUT_MS: how long one target may stay silent before the INVITE goes to the next (default 4 s, as shipped) */
  targetTimeoutMs?: number;
  /** for tests: the RFC 3263 lookups (default: node:dns on dnsServers) */
  targets?: TargetResolver;
}

const DEFAULT_USER_AGENT = 'talkdesk-ccai-gateway';
/** CCAI_TARGET_TIMEOUT_MS's shipped default, for a backend built without the config (tests) */
const DEFAULT_TARGET_TIMEOUT_MS = 4_000;
/** long enough for a call's last transactions to be retried on the same connection, short enough not to pile up */
const DEFAULT_IDLE_CONNECTION_MS = 5_000;

/** Our own RFC 3261 UAC over UDP, TCP or TLS: the SipBackend for hosts without drachtio-server. */
export class EmbeddedSipBackend implements SipBackend {
  readonly name = 'embedded';
  private readonly timers: SipTimers;
  private readonly transport: SipTransport;
  private stack: SipStack | undefined;

  constructor(private readonly opts: EmbeddedSipBackendOptions) {
    this.timers = resolveSipTimers(opts.timers);
    this.transport = createTransport(opts);
  }

  /** started and not stopped: the sockets are bound */
  get ready(): boolean {
    return this.stack !== undefined;
  }

  get localPort(): number {
    return this.transport.localPort;
  }

  /** transactions and dialogs alive now: both drop to 0 once every call and its timers are done */
  get activeCounts(): { transactions: number; dialogs: number } {
    return this.stack?.counts ?? { transactions: 0, dialogs: 0 };
  }

  /** TCP/TLS connections open or opening now (0 on UDP): back to 0 once calls end and the idle grace passed */
  get openConnections(): number {
    return this.transport instanceof StreamTransport ? this.transport.connectionCount : 0;
  }

  async start(): Promise<void> {
    if (this.stack) return;
    const { bindAddress, advertisedAddress, log } = this.opts;
    const stack = new SipStack({
      transport: this.transport,
      timers: this.timers,
      log,
      advertisedAddress,
      userAgent: this.opts.userAgent ?? DEFAULT_USER_AGENT,
      ...(this.opts.sessionSecondMs === undefined ? {} : { sessionSecondMs: this.opts.sessionSecondMs }),
      ccaiSources: ccaiSourcesOf(this.opts.ccaiSourceAddresses ?? []),
      targets: this.opts.targets ?? new TargetResolver({ servers: this.opts.dnsServers ?? [] }),
      targetTimeoutMs: this.opts.targetTimeoutMs ?? DEFAULT_TARGET_TIMEOUT_MS,
    });
    const { protocol } = this.transport;
    const [port, portSetting] = protocol === 'TLS' ? [this.opts.tls?.port, 'SIP_TLS_PORT'] : [this.opts.port, 'SIP_PORT'];
    try {
      await this.transport.start(stack);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code
        ? `cannot bind ${protocol} ${bindAddress}:${port} (check SIP_BIND_ADDRESS and ${portSetting}): ${code}`
        : `cannot start: ${(err as Error).message}`;
      throw new Error(`embedded SIP backend ${why}`, { cause: err });
    }
    this.stack = stack;
    log.info({ bindAddress, protocol, port: this.transport.localPort, advertisedAddress }, 'embedded SIP backend listening');
  }

  async stop(): Promise<void> {
    const stack = this.stack;
    this.stack = undefined;
    stack?.dispose();
    await this.transport.close();
  }

  invite(request: InviteRequest): OutgoingInvite {
    if (this.stack) return new InviteSession(this.stack, request);
    const answered = Promise.reject(new SipFailure('unavailable', 'embedded SIP backend is not started'));
    answered.catch(() => undefined);
    return { answered, cancel: () => undefined };
  }

  /** One out-of-dialog OPTIONS (`npm run doctor`): the final answer and its round trip, or a SipFailure saying why none came. */
  options(requestUri: string, fromUser: string): Promise<OptionsAnswer> {
    if (!this.stack) return Promise.reject(new SipFailure('unavailable', 'embedded SIP backend is not started'));
    return sendOptions(this.stack, requestUri, fromUser, this.opts.log);
  }
}

function createTransport(opts: EmbeddedSipBackendOptions): SipTransport {
  const { bindAddress, port, log } = opts;
  const idleCloseMs = opts.idleConnectionMs ?? DEFAULT_IDLE_CONNECTION_MS;
  switch (opts.transport) {
    case 'udp':
      return new UdpTransport(bindAddress, port);
    case 'tcp':
      return new StreamTransport(new TcpFlavor(), { bindAddress, port, log, idleCloseMs });
    case 'tls': {
      const { tls, ccaiHost } = opts;
      if (!tls || ccaiHost === undefined) throw new Error('embedded SIP backend: transport tls needs the tls settings and ccaiHost');
      const flavor = new TlsFlavor({ tls, ccaiHost, log });
      return new StreamTransport(flavor, { bindAddress, port: tls.port, log, idleCloseMs });
    }
  }
}
