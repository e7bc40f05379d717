import type { IncomingMessage } from './message.js';
import { serializeResponse, type ResponseSpec } from './message-builder.js';
import { newTag } from './ids.js';
import { Transaction, type TransactionContext } from './transaction.js';

/**
 * Our UA core answers every request synchronously with a final response, so neither server transaction sends
 * provisionals and their Proceeding/Trying state lasts only until `respond()`.
 */
interface ServerTransactionBase {
  readonly request: IncomingMessage;
  respond(spec: ResponseSpec): void;
  /** the same request arrived again: re-send the cached final response (§17.2.1, §17.2.2) */
  receiveRetransmission(): void;
  /** a final response has been sent */
  readonly answered: boolean;
}

/** To tag for responses to requests whose To has none (§8.2.6.2); one per transaction, so retransmissions match. */
function responseWire(request: IncomingMessage, spec: ResponseSpec): string {
  return serializeResponse(request, spec, newTag());
}

type NonInviteServerState = 'trying' | 'completed';

/**
 * Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8), without Proceeding (we never send 1xx).
 *
 *   trying ──final──▶ completed ──Timer J──▶ terminated; request retransmissions in completed re-send the final
 */
export class NonInviteServerTransaction
  extends Transaction<NonInviteServerState, 'J'>
  implements ServerTransactionBase
{
  private response: string | undefined;

  constructor(
    key: string,
    readonly request: IncomingMessage,
    ctx: TransactionContext,
  ) {
    super(key, 'trying', { trying: ['completed', 'terminated'], completed: ['terminated'] }, ctx);
  }

  respond(spec: ResponseSpec): void {
    if (this.state !== 'trying') throw new Error(`transaction ${this.key}: already answered`);
    this.response = responseWire(this.request, spec);
    this.send(this.response);
    this.transition('completed');
    this.timers.start('J', this.absorbFor(this.ctx.timers.J), () => this.transition('terminated'));
  }

  get answered(): boolean {
    return this.response !== undefined;
  }

  receiveRetransmission(): void {
    if (this.state === 'completed' && this.response) this.send(this.response);
  }

  protected onSendError(err: Error): void {
    this.ctx.log.warn({ err, txn: this.key }, 'SIP response could not be sent');
    this.transition('terminated');
  }
}

type InviteServerState = 'proceeding' | 'accepted' | 'completed' | 'confirmed';

/**
 * INVITE server transaction (re-INVITEs in our dialogs, and rejected out-of-dialog INVITEs), RFC 3261 §17.2.1
 * (Figure 7) with RFC 6026's Accepted state.
 *
 *   proceeding ──2xx──▶ accepted ──Timer L──▶ terminated
 *        │      2xx re-sent on the Timer G schedule until the ACK (§13.3.1.4; RFC 6026 gives this to the TU,
 *        │      we keep it here so the dialog code stays free of timers); INVITE retransmissions re-send the 2xx
 *        └──300-699──▶ completed ──ACK──▶ confirmed ──Timer I──▶ terminated
 *                         │ Timer G: resend, Timer H ──▶ terminated
 *
 * Deviation: when Timer L (or H) expires without an ACK we only log; §13.3.1.4 says the UAS SHOULD then send BYE.
 * The call keeps its own media watchdog and the bot sees no difference with a lost ACK.
 */
export class InviteServerTransaction
  extends Transaction<InviteServerState, 'G' | 'H' | 'I' | 'L'>
  implements ServerTransactionBase
{
  private response: string | undefined;
  private acked = false;

  constructor(
    key: string,
    readonly request: IncomingMessage,
    ctx: TransactionContext,
  ) {
    super(
      key,
      'proceeding',
      {
        proceeding: ['accepted', 'completed', 'terminated'],
        accepted: ['terminated'],
        completed: ['confirmed', 'terminated'],
        confirmed: ['terminated'],
      },
      ctx,
    );
  }

  respond(spec: ResponseSpec): void {
    if (this.state !== 'proceeding') throw new Error(`transaction ${this.key}: already answered`);
    const { T1, T2, H, L } = this.ctx.timers;
    this.response = responseWire(this.request, spec);
    this.send(this.response);
    if (spec.status < 300) {
      this.transition('accepted');
      this.retransmit('G', T1, T2, this.response);
      this.timers.start('L', L, () => this.expire('L'));
    } else {
      this.transition('completed');
      this.retransmit('G', T1, T2, this.response);
      this.timers.start('H', H, () => this.expire('H'));
    }
  }

  /** ACK for our final response: same branch for a non-2xx, matched through the dialog for a 2xx. */
  receiveAck(): void {
    if (this.state === 'accepted') {
      this.acked = true;
      this.timers.clear('G');
    } else if (this.state === 'completed') {
      this.transition('confirmed');
      this.timers.start('I', this.absorbFor(this.ctx.timers.I), () => this.transition('terminated'));
    }
  }

  get answered(): boolean {
    return this.response !== undefined;
  }

  receiveRetransmission(): void {
    if ((this.state === 'accepted' || this.state === 'completed') && this.response) this.send(this.response);
  }

  private expire(timer: 'H' | 'L'): void {
    if (!this.acked) this.ctx.log.warn({ txn: this.key, timer }, 'no ACK for our final response to INVITE');
    this.transition('terminated');
  }

  protected onSendError(err: Error): void {
    this.ctx.log.warn({ err, txn: this.key }, 'SIP response could not be sent');
    this.transition('terminated');
  }
}

export type ServerTransaction = NonInviteServerTransaction | InviteServerTransaction;
