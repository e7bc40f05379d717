import type { Logger } from 'pino';
import { TimerSet, type SipTimers } from './timers.js';
import type { Destination, SipTransport } from './transport.js';

/** What every transaction is given by the layer that owns it. */
export interface TransactionContext {
  readonly transport: SipTransport;
  readonly timers: SipTimers;
  readonly log: Logger;
  /** where requests (client) or responses (server) go */
  readonly destination: Destination;
  /** called exactly once, on reaching Terminated, so the owner drops the transaction from its table */
  readonly onTerminated: (key: string) => void;
}

export type TerminalState = 'terminated';

/**
 * An RFC 3261 §17 transaction as an explicit state machine. Each subclass lists the moves its state diagram allows;
 * every timer belongs to the state that started it and is cleared on leaving that state unless the move names it
 * as kept (Timer F runs on from Trying into Proceeding). `dispose()` clears everything.
 */
export abstract class Transaction<State extends string, TimerName extends string> {
  private current: State | TerminalState;
  protected readonly timers = new TimerSet<TimerName>();

  protected constructor(
    /** branch + method, the RFC 3261 §17.1.3 / §17.2.3 match key */
    readonly key: string,
    initial: State,
    private readonly allowed: Readonly<Record<State, readonly (State | TerminalState)[]>>,
    protected readonly ctx: TransactionContext,
  ) {
    this.current = initial;
  }

  get state(): State | TerminalState {
    return this.current;
  }

  /** where this transaction sends: a stream transport's connection is kept open while it lives */
  get destination(): Destination {
    return this.ctx.destination;
  }

  /** The connection to our destination was lost (RFC 3261 §17.1.4): handled as a send error. */
  connectionLost(err: Error): void {
    if (this.current !== 'terminated') this.onSendError(err);
  }

  /** Tears down at once (backend stop): clears all timers and leaves the table. */
  dispose(): void {
    if (this.current === 'terminated') return;
    this.onDispose();
    this.enter('terminated', []);
  }

  /** hook for subclasses whose user must hear that the transaction ended early */
  protected onDispose(): void {}

  protected transition(to: State | TerminalState, keepTimers: readonly TimerName[] = []): void {
    const from = this.current;
    if (from === 'terminated' || !this.allowed[from].includes(to)) {
      throw new Error(`transaction ${this.key}: illegal transition ${from} → ${to}`);
    }
    this.enter(to, keepTimers);
  }

  private enter(to: State | TerminalState, keepTimers: readonly TimerName[]): void {
    this.timers.clearExcept(to === 'terminated' ? [] : keepTimers);
    this.ctx.log.trace({ txn: this.key, from: this.current, to }, 'SIP transaction state');
    this.current = to;
    if (to === 'terminated') this.ctx.onTerminated(this.key);
  }

  protected send(data: string): void {
    this.ctx.transport.send(data, this.ctx.destination).catch((err: Error) => {
      if (this.current !== 'terminated') this.onSendError(err);
    });
  }

  protected abstract onSendError(err: Error): void;

  /**
   * Retransmits `data` after `interval`, doubling up to `cap` (Timers A, E, G; §17.1.1.2, §17.1.2.2, §17.2.1).
   * Skipped on reliable transports.
   */
  protected retransmit(timer: TimerName, interval: number, cap: number, data: string, due = performance.now() + interval): void {
    if (this.ctx.transport.reliable) return;
    // Each retransmission is due at a time fixed from the first send, not re-armed from when the last timer ran:
    // Node's timers run late by a few %, and six late re-arms would push the last INVITE retransmission past Timer B.
    this.timers.start(timer, Math.max(0, due - performance.now()), () => {
      this.send(data);
      const next = Math.min(2 * interval, cap);
      this.retransmit(timer, next, cap, data, due + next);
    });
  }

  /** The wait timers that only absorb UDP retransmissions (D, I, J, K) are zero on reliable transports. */
  protected absorbFor(ms: number): number {
    return this.ctx.transport.reliable ? 0 : ms;
  }
}

/** §17.1.3 / §17.2.3: transactions match on the top Via branch plus the method (ACK matches its INVITE). */
export function transactionKey(branch: string, method: string): string {
  return `${branch} ${method === 'ACK' ? 'INVITE' : method}`;
}
