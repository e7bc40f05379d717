import type { Logger } from 'pino';
import { DETACHED, type LegDelegate, type OutgoingInvite, type SipLeg } from './backend.js';
import { SipFailure } from './errors.js';
import { reportProgress, type BodyView } from './progress.js';

/**
 * The port's promises for one outgoing INVITE, kept one way for both adapters (the contract suite holds them to it):
 * `answered` settles once; cancel() rejects it at once and has CANCEL sent as soon as a provisional response allows
 * it (RFC 3261 §9.1); a 2xx that comes after it settled is hung up, and one without SDP fails the call and is hung up
 * (§13.2.2.4: every 2xx makes a dialog, so none may be left standing). Once settled, the call's delegate is let go:
 * the transaction outlives the call by up to 32 s (Timer M). Each adapter sends the INVITE, its ACK and its CANCEL
 * its own way.
 */
export abstract class InviteAttempt implements OutgoingInvite {
  readonly answered: Promise<SipLeg>;
  private resolveAnswered!: (leg: SipLeg) => void;
  private rejectAnswered!: (failure: SipFailure) => void;
  protected settled = false;
  protected canceled = false;
  private cancelSent = false;
  /** The call's until `answered` settles, then DETACHED. */
  protected delegate: LegDelegate;

  protected constructor(
    protected readonly log: Logger,
    delegate: LegDelegate,
  ) {
    this.delegate = delegate;
    this.answered = new Promise<SipLeg>((resolve, reject) => {
      this.resolveAnswered = resolve;
      this.rejectAnswered = reject;
    });
    // A rejection is an outcome, not a crash: the call may have stopped listening (e.g. after cancel()).
    this.answered.catch(() => undefined);
  }

  cancel(): void {
    if (this.settled) return;
    this.canceled = true;
    this.fail(new SipFailure('canceled', 'INVITE canceled before it was answered'));
    if (this.provisionalCame()) this.requestCancel();
  }

  /** Settles `answered` with a failure; a no-op once it settled (the drachtio backend also calls it when its connection goes). */
  fail(failure: SipFailure): void {
    if (this.settled) return;
    this.settle();
    this.log.info({ cause: failure.cause, reason: failure.message }, 'INVITE failed');
    this.rejectAnswered(failure);
  }

  /** A 1xx: the CANCEL a cancel() is waiting for goes now; otherwise the call hears of it. */
  protected onProvisional(status: number, response: BodyView): void {
    if (this.canceled) {
      this.requestCancel();
      return;
    }
    reportProgress(this.log, this.delegate, status, response);
  }

  /**
   * A 2xx's leg, ACKed: the call's if it is still wanted and carries an answer, else hung up at once. True when the
   * call took it.
   */
  protected onAnswered(leg: SipLeg, hasSdp: boolean): boolean {
    if (this.settled) {
      this.log.info({ canceled: this.canceled, callId: leg.callId }, '2xx for an INVITE already settled: hanging up');
      void leg.hangup();
      return false;
    }
    if (!hasSdp) {
      this.fail(SipFailure.noSdpAnswer());
      void leg.hangup();
      return false;
    }
    this.settle();
    this.log.info({ callId: leg.callId }, 'INVITE answered');
    this.resolveAnswered(leg);
    return true;
  }

  /** Whether the INVITE in flight has had a provisional response, so a CANCEL may go (§9.1). */
  protected abstract provisionalCame(): boolean;
  /** Sends the CANCEL; false when there is no INVITE out yet to cancel. Its outcome only gets logged. */
  protected abstract sendCancel(): boolean;
  /** The adapter's bookkeeping once `answered` settles. */
  protected onSettled(): void {}

  private requestCancel(): void {
    if (!this.cancelSent) this.cancelSent = this.sendCancel();
  }

  private settle(): void {
    this.settled = true;
    this.delegate = DETACHED;
    this.onSettled();
  }
}
