import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import Srf from 'drachtio-srf/lib/srf.js';
import type { Logger } from 'pino';
import type { PluginConfig, SipTransport } from '../../../config/schema.js';
import type { InviteRequest, OutgoingInvite, SipBackend } from '../backend.js';
import { ccaiSourcesOf } from '../dialog-peer.js';
import { SipFailure } from '../errors.js';
import { hasTransport, missingTransportHelp } from './hostports.js';
import { DrachtioInvite, type InviteContext } from './invite.js';
import { PeerGate } from './peer-gate.js';
import { stopReconnecting, useFirst } from './srf-internals.js';

export interface DrachtioSipBackendOptions {
  /** drachtio-server's admin address: DRACHTIO_HOST, DRACHTIO_PORT (9022), DRACHTIO_SECRET */
  host: string;
  port: number;
  secret: string;
  /** TLS to the admin port; only the first connection uses it, srf reconnects over plain TCP (drachtio-srf #211) */
  tls?: ConnectionOptions;
  /** the SIP transport the INVITEs need drachtio-server to have bound (CCAI_SIP_TRANSPORT) */
  transport: SipTransport;
  log: Logger;
  /** how long start() waits for the first authenticated connection */
  connectTimeoutMs?: number;
  /** cap of srf's reconnect backoff (150 ms × 1.7 per attempt) */
  retryMaxDelayMs?: number;
  /** how long hangup() waits for the BYE's answer; drachtio-server's own Timer F is 32 s */
  byeTimeoutMs?: number;
  /** CCAI_SOURCE_ADDRESSES: addresses and CIDR ranges that may act in any dialog besides its own peer (../dialog-peer.ts) */
  ccaiSourceAddresses?: readonly string[];
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_MAX_DELAY_MS = 5_000;
const DEFAULT_BYE_TIMEOUT_MS = 34_000;
/** how long stop() waits for drachtio-srf to report the control connection closed */
const CLOSE_WAIT_MS = 1_000;

/**
 * The SipBackend in front of the gateway's drachtio-server: drachtio-srf's UAC over its control connection
 * (sip-notes §1.2, inbound mode). drachtio-server owns the SIP transports and transactions; we own the media.
 * Never calls srf.invite(): on a drachtio shared with jambonz that would take a share of jambonz's inbound calls.
 */
export class DrachtioSipBackend implements SipBackend {
  readonly name = 'drachtio';
  private srf: Srf | undefined;
  private connected = false;
  private stopped = false;
  /** INVITEs waiting for a final response: a lost control connection never answers them, so we do */
  private readonly pending = new Set<DrachtioInvite>();
  private readonly context: InviteContext;
  /** only a dialog's peer acts in it: checked before srf handles an in-dialog request */
  private readonly gate = new PeerGate();

  constructor(private readonly opts: DrachtioSipBackendOptions) {
    this.context = {
      byeTimeoutMs: opts.byeTimeoutMs ?? DEFAULT_BYE_TIMEOUT_MS,
      settled: (invite) => this.pending.delete(invite),
      gate: this.gate,
      ccaiSources: ccaiSourcesOf(opts.ccaiSourceAddresses ?? []),
    };
  }

  /** The options the plugin's configuration gives: `PluginConfig.drachtio` and the CCAI transport. */
  static optionsFrom(config: PluginConfig, log: Logger): DrachtioSipBackendOptions {
    const { host, port, secret, tls, caFile } = config.drachtio;
    return {
      host,
      port,
      secret,
      tls: tls ? (caFile ? { ca: readFileSync(caFile) } : {}) : undefined,
      transport: config.sip.ccaiTransport,
      ccaiSourceAddresses: config.sip.ccaiSourceAddresses,
      log,
    };
  }

  /** true while authenticated to drachtio-server: INVITEs can go out */
  get isConnected(): boolean {
    return this.connected;
  }

  /** the SipBackend port's name for isConnected: false while srf reconnects, so /ready says 503 */
  get ready(): boolean {
    return this.connected;
  }

  /**
   * Connects and resolves on the first authenticated 'connect' whose hostport list has our transport. Rejects,
   * naming the setting at fault, on a refused secret, a missing transport or no connection within the deadline;
   * srf then stops reconnecting.
   */
  async start(): Promise<void> {
    if (this.srf) return;
    const { host, port, secret, tls, log } = this.opts;
    const srf = new Srf();
    useFirst(srf, this.gate.middleware);
    this.srf = srf;
    this.stopped = false;
    const where = `drachtio-server at ${host}:${port}`;

    const first = new Promise<void>((resolve, reject) => {
      let lastError = 'no answer';
      const timer = setTimeout(
        () => reject(new Error(`cannot reach ${where} within ${this.connectTimeoutMs} ms (check DRACHTIO_HOST and DRACHTIO_PORT): ${lastError}`)),
        this.connectTimeoutMs,
      );
      const done = (err?: Error): void => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      srf.on('error', (err) => {
        lastError = (err as NodeJS.ErrnoException).code ?? err.message;
        log.warn({ err: lastError, host, port }, 'drachtio-server connection error');
      });
      srf.on('connect', (err, hostport = '', serverVersion) => {
        if (this.stopped) {
          this.disconnect(srf);
          return;
        }
        const problem = err
          ? `${where} refused our secret (check DRACHTIO_SECRET): ${err.message}`
          : hasTransport(hostport, this.opts.transport)
            ? undefined
            : missingTransportHelp(where, hostport, this.opts.transport);
        if (problem) {
          // on a reconnect start() has long resolved: the log is all there is, and INVITEs stay unavailable
          log.error({ hostport, serverVersion }, problem);
          done(new Error(problem));
          return;
        }
        this.connected = true;
        log.info({ hostport, serverVersion }, 'connected to drachtio-server');
        done();
      });
    });
    srf.on('close', () => {
      const wasConnected = this.connected;
      this.connected = false;
      if (this.stopped) return;
      log.warn({ host, port, pendingInvites: this.pending.size }, 'drachtio-server connection closed');
      if (wasConnected) this.failPending();
    });
    srf.on('reconnecting', ({ delay, attempt }) => log.info({ delay, attempt }, 'reconnecting to drachtio-server'));

    srf.connect({
      host,
      port,
      secret,
      ...(tls ? { tls } : {}),
      enablePing: true,
      reconnect: { retryMaxDelay: this.opts.retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS },
    });
    try {
      await first;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Ends the control connection and srf's reconnecting. Live dialogs stay on drachtio-server (see README). */
  async stop(): Promise<void> {
    const srf = this.srf;
    if (!srf) return;
    this.stopped = true;
    this.srf = undefined;
    const wasConnected = this.connected;
    this.connected = false;
    this.failPending();
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      srf.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    stopReconnecting(srf);
    if (this.disconnect(srf) || wasConnected) await closed;
  }

  invite(request: InviteRequest): OutgoingInvite {
    const srf = this.srf;
    if (!srf || !this.connected) {
      const answered = Promise.reject(new SipFailure('unavailable', 'drachtio-server is not connected'));
      answered.catch(() => undefined);
      return { answered, cancel: () => undefined };
    }
    const invite = new DrachtioInvite(srf, request, this.context);
    this.pending.add(invite);
    return invite;
  }

  private get connectTimeoutMs(): number {
    return this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** srf.disconnect() asserts a connected socket; false when there was none to end */
  private disconnect(srf = this.srf): boolean {
    try {
      srf?.disconnect();
      return true;
    } catch {
      return false;
    }
  }

  private failPending(): void {
    for (const invite of [...this.pending]) {
      invite.fail(new SipFailure('unavailable', 'drachtio-server connection lost before the INVITE was answered'));
    }
  }
}
