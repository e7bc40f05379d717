import { SipFailure } from '../errors.js';
import type { IncomingMessage } from './message.js';
import { requestInInviteTransaction, serializeRequest, type OutgoingRequest } from './message-builder.js';
import { Transaction, type TransactionContext } from './transaction.js';

/** The transaction user (UA core) of a client transaction. */
export interface ClientTransactionUser {
  /** every response the transaction passes up: 1xx and the final one; for INVITE also 2xx retransmissions */
  onResponse(response: IncomingMessage): void;
  /** no final response: Timer B/F (`timeout`), a send error (`transport`) or backend stop (`unavailable`) */
  onFailure(failure: SipFailure): void;
}

type InviteClientState = 'calling' | 'proceeding' | 'completed' | 'accepted';

/**
 * INVITE client transaction, RFC 3261 §17.1.1 (Figure 5) with RFC 6026's Accepted state, which keeps the
 * transaction alive for Timer M after a 2xx so 2xx retransmissions (and forked 2xx) reach the TU to be ACKed.
 * The TU sends the ACK for a 2xx (§13.2.2.4); this transaction ACKs non-2xx finals itself (§17.1.1.3).
 *
 *   calling ──1xx──▶ proceeding ──2xx──▶ accepted ──Timer M──▶ terminated
 *      │  Timer A: resend   │   └──300-699──▶ completed ──Timer D──▶ terminated
 *      └─Timer B──▶ terminated (timeout)
 */
export class InviteClientTransaction extends Transaction<InviteClientState, 'A' | 'B' | 'D' | 'M'> {
  private ack: string | undefined;

  constructor(
    key: string,
    private readonly invite: OutgoingRequest,
    ctx: TransactionContext,
    private readonly user: ClientTransactionUser,
  ) {
    super(
      key,
      'calling',
      {
        calling: ['proceeding', 'completed', 'accepted', 'terminated'],
        proceeding: ['completed', 'accepted', 'terminated'],
        completed: ['terminated'],
        accepted: ['terminated'],
      },
      ctx,
    );
  }

  start(): void {
    const wire = serializeRequest(this.invite);
    this.send(wire);
    // Timer A doubles without a cap for INVITE: T1, 2T1, 4T1, … until Timer B (§17.1.1.2)
    this.retransmit('A', this.ctx.timers.T1, Infinity, wire);
    this.timers.start('B', this.ctx.timers.B, () => this.timeOut());
  }

  /** no final response yet: a lost connection fails it (RFC 3261 §17.1.4) */
  get awaitsFinalResponse(): boolean {
    return this.state === 'calling' || this.state === 'proceeding';
  }

  /**
   * RFC 3261 §9.1: once CANCEL is sent, a final response should follow; without one in 64*T1 the INVITE is
   * considered cancelled. Re-arms Timer B in Proceeding for that (Proceeding has no timer of its own).
   */
  guardCancel(): void {
    if (this.state === 'proceeding') this.timers.start('B', this.ctx.timers.B, () => this.timeOut());
  }

  /**
   * The UA moves on to another target (RFC 3263 §4.3) before this one answered anything: no more retransmissions, no
   * Timer B, and the user hears nothing more. A response that still comes finds no transaction and is dropped.
   */
  abandon(): void {
    if (this.state === 'calling') this.transition('terminated');
  }

  receiveResponse(response: IncomingMessage): void {
    const status = response.sip.status!;
    switch (this.state) {
      case 'calling':
      case 'proceeding':
        if (status < 200) {
          if (this.state === 'calling') this.transition('proceeding');
        } else if (status < 300) {
          this.transition('accepted');
          this.timers.start('M', this.ctx.timers.M, () => this.transition('terminated'));
        } else {
          this.ack = serializeRequest(requestInInviteTransaction(this.invite, 'ACK', response.sip.get('to')!));
          this.send(this.ack);
          this.transition('completed');
          this.timers.start('D', this.absorbFor(this.ctx.timers.D), () => this.transition('terminated'));
        }
        this.user.onResponse(response);
        return;
      case 'accepted':
        // RFC 6026 §8.4: 2xx retransmissions go to the TU, which re-sends its ACK
        if (status >= 200 && status < 300) this.user.onResponse(response);
        return;
      case 'completed':
        // §17.1.1.2: a retransmitted final response is answered with the same ACK, not passed up
        if (status >= 300 && this.ack) this.send(this.ack);
        return;
      case 'terminated':
        return;
    }
  }

  private timeOut(): void {
    this.transition('terminated');
    this.user.onFailure(new SipFailure('timeout', `no final response to INVITE within ${this.ctx.timers.B} ms (Timer B)`));
  }

  protected onSendError(err: Error): void {
    this.transition('terminated');
    this.user.onFailure(new SipFailure('transport', `could not send INVITE: ${err.message}`));
  }

  protected override onDispose(): void {
    if (this.state === 'calling' || this.state === 'proceeding') {
      this.user.onFailure(new SipFailure('unavailable', 'SIP backend stopped before the INVITE was answered'));
    }
  }
}

type NonInviteClientState = 'trying' | 'proceeding' | 'completed';

/**
 * Non-INVITE client transaction (BYE, CANCEL), RFC 3261 §17.1.2 (Figure 6).
 *
 *   trying ──1xx──▶ proceeding ──final──▶ completed ──Timer K──▶ terminated
 *   Timer E resends (T1 doubling to T2; T2 in proceeding), Timer F (both states) ──▶ terminated (timeout)
 */
export class NonInviteClientTransaction extends Transaction<NonInviteClientState, 'E' | 'F' | 'K'> {
  private readonly wire: string;

  constructor(
    key: string,
    private readonly request: OutgoingRequest,
    ctx: TransactionContext,
    private readonly user: ClientTransactionUser,
  ) {
    super(
      key,
      'trying',
      {
        trying: ['proceeding', 'completed', 'terminated'],
        proceeding: ['completed', 'terminated'],
        completed: ['terminated'],
      },
      ctx,
    );
    this.wire = serializeRequest(request);
  }

  start(): void {
    this.send(this.wire);
    this.retransmit('E', this.ctx.timers.T1, this.ctx.timers.T2, this.wire);
    this.timers.start('F', this.ctx.timers.F, () => {
      this.transition('terminated');
      this.user.onFailure(
        new SipFailure('timeout', `no final response to ${this.request.method} within ${this.ctx.timers.F} ms (Timer F)`),
      );
    });
  }

  /** no final response yet: a lost connection fails it (RFC 3261 §17.1.4) */
  get awaitsFinalResponse(): boolean {
    return this.state === 'trying' || this.state === 'proceeding';
  }

  receiveResponse(response: IncomingMessage): void {
    if (!this.awaitsFinalResponse) return; // Completed absorbs retransmissions
    if (response.sip.status! < 200) {
      if (this.state === 'trying') {
        this.transition('proceeding', ['F']);
        this.retransmit('E', this.ctx.timers.T2, this.ctx.timers.T2, this.wire);
      }
    } else {
      this.transition('completed');
      this.timers.start('K', this.absorbFor(this.ctx.timers.K), () => this.transition('terminated'));
    }
    this.user.onResponse(response);
  }

  protected onSendError(err: Error): void {
    this.transition('terminated');
    this.user.onFailure(new SipFailure('transport', `could not send ${this.request.method}: ${err.message}`));
  }

  protected override onDispose(): void {
    if (this.state === 'trying' || this.state === 'proceeding') {
      this.user.onFailure(new SipFailure('unavailable', `SIP backend stopped before ${this.request.method} was answered`));
    }
  }
}

export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;
