import type Srf from 'drachtio-srf/lib/srf.js';
import type { Logger } from 'pino';
import { ALLOW, DETACHED, type LegDelegate, type SipLeg, type SipMessageView } from '../backend.js';
import { REFER_ACCEPTED, REFER_WHILE_ENDING, REFER_WITHOUT_ONE_TARGET, referNotify, singleReferTo } from '../refer.js';
import { callDelegate } from '../delegate-guard.js';
import { madeByDrachtio } from './made-by-drachtio.js';
import { forgetDialog } from './srf-internals.js';

export interface DrachtioLegOptions {
  /** our SDP: the INVITE's offer, sent again in answers to re-INVITE/UPDATE */
  localSdp: string;
  delegate: LegDelegate;
  log: Logger;
  byeTimeoutMs: number;
  /** the dialog is over: its peer check (peer-gate.ts) is no longer needed */
  release: () => void;
}

/** the methods we answer ourselves in the dialog, as the embedded backend's Allow says */

/**
 * A confirmed drachtio dialog as the call's SipLeg. srf answers every in-dialog request by itself unless a listener
 * exists, and then answers 200 to all of them, REFER included (sip-notes §1.5); so every method gets an explicit
 * handler here, with the embedded backend's answers where the port defines them.
 */
export class DrachtioLeg implements SipLeg {
  readonly callId: string;
  readonly remoteSdp: string;
  private hangupDone: Promise<void> | undefined;
  /** the dialog ended by a BYE either way */
  private ended = false;
  /** REFERs accepted so far: the NOTIFY of a second one carries `id` */
  private refers = 0;
  /** the call's until the dialog ends either way, then DETACHED: as the embedded leg, the call hears nothing more */
  private delegate: LegDelegate;
  private readonly opts: Omit<DrachtioLegOptions, 'delegate'>;

  constructor(
    private readonly dlg: Srf.Dialog,
    { delegate, ...opts }: DrachtioLegOptions,
  ) {
    this.callId = dlg.sip.callId;
    this.remoteSdp = dlg.remote.sdp ?? '';
    this.delegate = delegate;
    this.opts = opts;
    this.listen();
  }

  /** BYE with the call's headers; resolves on its answer, an error or byeTimeoutMs. Idempotent; never rejects. */
  hangup(headers: Record<string, string> = {}): Promise<void> {
    this.hangupDone ??= this.bye(headers);
    return this.hangupDone;
  }

  /**
   * dlg.request, not dlg.destroy: destroy() resolves alike on every answer, and a 503 drachtio-server made itself
   * because it could not reach the bot (madeByDrachtio) is not the bot's answer: the bot never heard our BYE.
   */
  private async bye(headers: Record<string, string>): Promise<void> {
    const { log } = this.opts;
    if (this.ended || !this.dlg.connected) return;
    this.end();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.opts.byeTimeoutMs);
    });
    try {
      const answer = await Promise.race([this.dlg.request({ method: 'BYE', headers: { ...headers } }), timeout]);
      if (!answer) log.info({ outcome: `no answer within ${this.opts.byeTimeoutMs} ms` }, 'BYE done');
      else if (madeByDrachtio(answer)) log.warn({ outcome: `${answer.status} ${answer.reason} from drachtio-server itself` }, 'BYE not delivered to the bot');
      else log.info({ outcome: `${answer.status} ${answer.reason}` }, 'BYE done');
    } catch (err) {
      // ENODIALOG: drachtio-server has already forgotten the dialog (a BYE crossed ours, issue #157); benign
      log.info({ err: (err as Error).message, code: (err as { code?: string }).code }, 'BYE not sent');
      forgetDialog(this.dlg);
    } finally {
      clearTimeout(timer);
      this.opts.release();
    }
  }

  /** Our BYE went out or the dialog is gone: nothing more is reported to the call. */
  private end(): void {
    this.ended = true;
    this.delegate = DETACHED;
  }

  /**
   * REFER (RFC 3515), as the embedded backend: 202 and at once the final NOTIFY (`../refer.ts`), then onRefer; not
   * exactly one Refer-To is a 400, a REFER after our BYE a 603. drachtio-server adds Contact only to answers to
   * INVITE/SUBSCRIBE and to in-dialog INVITE, SUBSCRIBE and REFER requests, and refuses a body without Content-Type:
   * so both are given here.
   */
  private acceptRefer(req: Srf.Request, res: Srf.ServerResponse): void {
    const { dlg, delegate } = this;
    const { log } = this.opts;
    const referTo = singleReferTo((name) => req.get(name));
    if (referTo === undefined) {
      res.send(REFER_WITHOUT_ONE_TARGET.status, REFER_WITHOUT_ONE_TARGET.reason);
      return;
    }
    if (this.ended || !dlg.connected) {
      res.send(REFER_WHILE_ENDING.status, REFER_WHILE_ENDING.reason);
      return;
    }
    res.send(REFER_ACCEPTED.status, REFER_ACCEPTED.reason, { headers: { Contact: dlg.local.contact } });
    const { headers, body } = referNotify(++this.refers, Number.parseInt(req.get('cseq') ?? '0', 10));
    dlg.request({ method: 'NOTIFY', headers: { Contact: dlg.local.contact, ...headers }, body }).then(
      (answer) => log.debug({ method: 'NOTIFY', status: answer.status }, 'in-dialog request answered'),
      (err: unknown) => log.warn({ method: 'NOTIFY', err: (err as Error).message }, 'in-dialog request failed'),
    );
    log.info({ referTo }, 'REFER accepted');
    callDelegate(log, 'onRefer', () => delegate.onRefer(req));
  }

  private listen(): void {
    const { dlg } = this;
    const { log, localSdp } = this.opts;
    const sdpAnswer = { Contact: dlg.local.contact, 'Content-Type': 'application/sdp' };

    dlg.on('destroy', (bye, reason) => {
      const reported = !this.ended;
      const { delegate } = this;
      this.end();
      this.opts.release();
      if (bye.source === 'network') {
        log.info({ reported }, 'BYE received');
        if (reported) callDelegate(log, 'onBye', () => delegate.onBye(bye));
        return;
      }
      // drachtio-server ended the dialog itself (RFC 4028 session expiry, ACK-BYE race) and tells us with a BYE of
      // its own (sip-notes §1.5): the bot did not hang up, so nothing of it may read as the bot's escalation.
      const cause = endCauseOf(reason, bye);
      log.warn({ reason, cause, reported }, 'dialog ended by drachtio-server, not by the bot');
      if (!reported) return;
      if (delegate.onEnded) callDelegate(log, 'onEnded', () => delegate.onEnded!(cause));
      else callDelegate(log, 'onBye', () => delegate.onBye(withoutEndingHeaders(bye)));
    });

    // re-INVITE (§14.2): answer with our unchanged SDP; an offerless one gets it as the offer, its answer in the ACK
    dlg.on('modify', (req, res) => {
      res.send(200, { headers: sdpAnswer, body: localSdp });
      if (req.body) callDelegate(log, 'onRemoteSdp', () => this.delegate.onRemoteSdp(req.body));
    });
    dlg.on('ack', (ack) => {
      if (ack.body) callDelegate(log, 'onRemoteSdp', () => this.delegate.onRemoteSdp(ack.body));
    });
    // UPDATE (RFC 3311): with an offer, as a re-INVITE; without, a 200 that only refreshes the dialog
    dlg.on('update', (req, res) => {
      if (!req.body) {
        res.send(200);
        return;
      }
      res.send(200, { headers: sdpAnswer, body: localSdp });
      callDelegate(log, 'onRemoteSdp', () => this.delegate.onRemoteSdp(req.body));
    });
    dlg.on('info', (req, res) => {
      res.send(200);
      callDelegate(log, 'onInfo', () => this.delegate.onInfo?.(req));
    });
    dlg.on('options', (_req, res) => res.send(200, { headers: { Allow: ALLOW, Accept: 'application/sdp' } }));
    dlg.on('refer', (req, res) => this.acceptRefer(req, res));
    for (const method of ['message', 'notify', 'publish'] as const) {
      dlg.on(method, (_req, res) => res.send(501, { headers: { Allow: ALLOW } }));
    }
  }
}

/**
 * The cause the call reports for drachtio-server's own BYE: `session-expired` when an RFC 4028 session timer ran
 * out (`Reason: SIP ;cause=200 ;text="Session timer expired"`, or srf's reason saying so), as the embedded backend
 * says it; otherwise `sip-ended-by-server`.
 */
export function endCauseOf(reason: string | undefined, bye: Srf.Request): string {
  return /session.?timer/i.test(`${reason ?? ''} ${bye.get('reason') ?? ''}`) ? 'session-expired' : 'sip-ended-by-server';
}

/**
 * A view of drachtio-server's own BYE that keeps only what identifies the dialog: escalation rules read X-headers,
 * User-to-User and Reason, and drachtio's BYE carries `Reason: SIP ;cause=200 ;text="Session timer expired"`.
 */
const DIALOG_HEADERS = ['via', 'from', 'to', 'call-id', 'cseq', 'max-forwards', 'content-length'];

export function withoutEndingHeaders(bye: Srf.Request): SipMessageView {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(bye.headers)) {
    if (DIALOG_HEADERS.includes(name.toLowerCase())) headers[name] = value;
  }
  return {
    method: bye.method,
    headers,
    body: '',
    get: (name) => (DIALOG_HEADERS.includes(name.toLowerCase()) ? bye.get(name) : undefined),
    has: (name) => DIALOG_HEADERS.includes(name.toLowerCase()) && bye.has(name),
  };
}
