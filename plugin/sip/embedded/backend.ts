import type { Logger } from 'pino';
import type { InviteRequest, OutgoingInvite, SipBackend } from '../backend.js';
import { SipFailure } from '../errors.js';
import { InviteSession } from './invite-session.js';
import { SipStack } from './stack.js';
import { resolveSipTimers, type SipTimers } from './timers.js';
import { UdpTransport } from './transport-udp.js';

export interface EmbeddedSipBackendOptions {
  bindAddress: string;
  /** 0 = an ephemeral port (see localPort) */
  port: number;
  /** host put in Via, From and Contact (the address the bot can reach us at) */
  advertisedAddress: string;
  transport: 'udp';
  log: Logger;
  /** RFC 3261 timer overrides, for tests; unset ones keep RFC values derived from T1/T4 */
  timers?: Partial<SipTimers>;
  userAgent?: string;
}

const DEFAULT_USER_AGENT = 'talkdesk-ccai-gateway';

/** Our own RFC 3261 UAC over UDP: the SipBackend for hosts without drachtio-server. */
export class EmbeddedSipBackend implements SipBackend {
  readonly name = 'embedded';
  private readonly timers: SipTimers;
  private readonly transport: UdpTransport;
  private stack: SipStack | undefined;

  constructor(private readonly opts: EmbeddedSipBackendOptions) {
    this.timers = resolveSipTimers(opts.timers);
    this.transport = new UdpTransport(opts.bindAddress, opts.port);
  }

  get localPort(): number {
    return this.transport.localPort;
  }

  /** transactions and dialogs alive now: both drop to 0 once every call and its timers are done */
  get activeCounts(): { transactions: number; dialogs: number } {
    return this.stack?.counts ?? { transactions: 0, dialogs: 0 };
  }

  async start(): Promise<void> {
    if (this.stack) return;
    const { bindAddress, port, advertisedAddress, log } = this.opts;
    try {
      await this.transport.start((data, source) => this.stack?.receive(data, source));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(`embedded SIP backend cannot bind UDP ${bindAddress}:${port} (check SIP_BIND_ADDRESS and SIP_PORT): ${code}`, {
        cause: err,
      });
    }
    this.stack = new SipStack({
      transport: this.transport,
      timers: this.timers,
      log,
      advertisedAddress,
      userAgent: this.opts.userAgent ?? DEFAULT_USER_AGENT,
    });
    log.info({ bindAddress, port: this.transport.localPort, advertisedAddress }, 'embedded SIP backend listening');
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
}
