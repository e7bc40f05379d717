import type Srf from 'drachtio-srf/lib/srf.js';
import type { Logger } from 'pino';
import type { LegDelegate, SipLeg, SipMessageView } from '../backend.js';
import { callDelegate } from './delegate-guard.js';

export interface DrachtioLegOptions {
  /** our SDP: the INVITE's offer, sent again in answers to re-INVITE/UPDATE */
  localSdp: string;
  delegate: LegDelegate;
  log: Logger;
  byeTimeoutMs: number;
}

/** the methods we answer ourselves in the dialog, as the embedded backend's Allow says */
const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE';

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

  constructor(
    private readonly dlg: Srf.Dialog,
    private readonly opts: DrachtioLegOptions,
  ) {
    this.callId = dlg.sip.callId;
    this.remoteSdp = dlg.remote.sdp ?? '';
    this.listen();
  }

  /** BYE with the call's headers; resolves on its answer, an error or byeTimeoutMs. Idempotent; never rejects. */
  hangup(headers: Record<string, string> = {}): Promise<void> {
    this.hangupDone ??= this.bye(headers);
    return this.hangupDone;
  }

  private async bye(headers: Record<string, string>): Promise<void> {
    const { log } = this.opts;
    if (this.ended || !this.dlg.connected) return;
    this.ended = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${this.opts.byeTimeoutMs} ms`), this.opts.byeTimeoutMs);
    });
    try {
      const outcome = await Promise.race([this.dlg.destroy({ headers: { ...headers } }).then(() => 'answered'), timeout]);
      log.info({ outcome }, 'BYE done');
    } catch (err) {
      // ENODIALOG: drachtio-server has already forgotten the dialog (a BYE crossed ours, issue #157); benign
      log.info({ err: (err as Error).message, code: (err as { code?: string }).code }, 'BYE not sent');
    } finally {
      clearTimeout(timer);
    }
  }

  private listen(): void {
    const { dlg } = this;
    const { delegate, log, localSdp } = this.opts;
    const sdpAnswer = { Contact: dlg.local.contact, 'Content-Type': 'application/sdp' };

    dlg.on('destroy', (bye, reason) => {
      const reported = !this.ended;
      this.ended = true;
      if (bye.source === 'network') {
        log.info({ reported }, 'BYE received');
        if (reported) callDelegate(log, 'onBye', () => delegate.onBye(bye));
        return;
      }
      // drachtio-server ended the dialog itself (session timer, ACK-BYE race) and tells us with a BYE of its own
      // (sip-notes §1.5): the bot did not hang up, so nothing of it may read as the bot's escalation.
      log.warn({ reason, reported }, 'dialog ended by drachtio-server, not by the bot');
      if (reported) callDelegate(log, 'onBye', () => delegate.onBye(withoutEndingHeaders(bye)));
    });

    // re-INVITE (§14.2): answer with our unchanged SDP; an offerless one gets it as the offer, its answer in the ACK
    dlg.on('modify', (req, res) => {
      res.send(200, { headers: sdpAnswer, body: localSdp });
      if (req.body) callDelegate(log, 'onRemoteSdp', () => delegate.onRemoteSdp(req.body));
    });
    dlg.on('ack', (ack) => {
      if (ack.body) callDelegate(log, 'onRemoteSdp', () => delegate.onRemoteSdp(ack.body));
    });
    // UPDATE (RFC 3311): with an offer, as a re-INVITE; without, a 200 that only refreshes the dialog
    dlg.on('update', (req, res) => {
      if (!req.body) {
        res.send(200);
        return;
      }
      res.send(200, { headers: sdpAnswer, body: localSdp });
      callDelegate(log, 'onRemoteSdp', () => delegate.onRemoteSdp(req.body));
    });
    dlg.on('info', (req, res) => {
      res.send(200);
      callDelegate(log, 'onInfo', () => delegate.onInfo?.(req));
    });
    dlg.on('options', (_req, res) => res.send(200, { headers: { Allow: ALLOW, Accept: 'application/sdp' } }));
    // REFER: a transfer we do not carry out; declined rather than srf's silent 200 (issue 5 maps it later)
    dlg.on('refer', (_req, res) => res.send(603, 'Decline'));
    for (const method of ['message', 'notify', 'publish'] as const) {
      dlg.on(method, (_req, res) => res.send(501, { headers: { Allow: ALLOW } }));
    }
  }
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
