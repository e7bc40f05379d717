import type Srf from 'drachtio-srf/lib/srf.js';
import SipError from 'drachtio-srf/lib/sip_error.js';
import SipMessage from 'drachtio-srf/lib/sip-parser/message.js';
import type { InviteRequest } from '../backend.js';
import { DialogPeer, type CcaiSources } from '../dialog-peer.js';
import { resolveUriHost } from '../embedded/destination.js';
import { SipFailure } from '../errors.js';
import { splitHeaderList } from '../header-list.js';
import { challengeToAnswer, type ConfiguredCredentials } from '../digest.js';
import { InviteAttempt } from '../invite-attempt.js';
import { DrachtioLeg } from './leg.js';
import { madeByDrachtio } from './made-by-drachtio.js';
import type { PeerGate } from './peer-gate.js';

type AuthAnswer = (err: Error | null, username?: string, password?: string) => void;

export interface InviteContext {
  byeTimeoutMs: number;
  /** the backend stops tracking the invite */
  settled(invite: DrachtioInvite): void;
  /** where each dialog's peer is held and checked */
  gate: PeerGate;
  /** CCAI_SOURCE_ADDRESSES */
  ccaiSources: CcaiSources;
}

/**
 * One outgoing INVITE through srf.createUAC. drachtio-server runs the transaction (timers, ACK for non-2xx,
 * retransmissions, the ACK of a 2xx); the port's promises are InviteAttempt's.
 */
export class DrachtioInvite extends InviteAttempt {
  /** the INVITE as drachtio-server sent it (cbRequest): what CANCEL needs */
  private sent: Srf.Request | undefined;
  private provisional = false;
  /** srf answered a challenge with our credentials: a 401/407 after that is theirs refused */
  private credentialsSent = false;

  constructor(
    srf: Srf,
    private readonly request: InviteRequest,
    private readonly context: InviteContext,
  ) {
    super(request.log, request.delegate);
    this.send(srf);
  }

  protected override onSettled(): void {
    this.context.settled(this);
  }

  protected provisionalCame(): boolean {
    return this.provisional;
  }

  private send(srf: Srf): void {
    const { request } = this;
    const { credentials } = request;
    request.log.info({ to: request.requestUri }, 'sending INVITE via drachtio');
    let dialog: Promise<Srf.Dialog>;
    try {
      dialog = srf.createUAC(
        request.requestUri,
        {
          localSdp: request.sdp,
          // From and Contact become sip:<fromUser>@<drachtio's address for this transport> (sip-notes §1.3)
          callingNumber: request.fromUser,
          headers: { ...contactFor(request.requestUri, request.fromUser), ...request.headers },
          ...(credentials === undefined ? {} : { auth: (_req: Srf.Request, res: Srf.Response, answer: AuthAnswer) => this.answerChallenge(res, credentials, answer) }),
        },
        {
          cbRequest: (err, req) => {
            if (!err && req) this.sent = req;
          },
          // res carries the whole 1xx as drachtio-server relayed it, body included (lib/drachtio-agent.js _onMsg)
          cbProvisional: (res) => {
            this.provisional = true;
            this.onProvisional(res.status, res);
          },
        },
      );
    } catch (err) {
      this.fail(failureOf(err));
      return;
    }
    dialog.then(
      (dlg) => this.onAnswer(dlg),
      (err: unknown) =>
        this.fail(this.credentialsSent && err instanceof SipError && (err.status === 401 || err.status === 407) ? SipFailure.authFailed(err.status) : failureOf(err)),
    );
  }

  /**
   * srf's digest client answers the first 401/407 of the call (MD5 only; once per Call-ID, so a stale nonce is not
   * answered again): with our credentials when challengeToAnswer says so, as in the embedded backend; otherwise the
   * challenge stands as the INVITE's final answer.
   */
  private answerChallenge(res: Srf.Response, credentials: ConfiguredCredentials, answer: AuthAnswer): void {
    const { log } = this.request;
    const status = res.status as 401 | 407;
    const accepted = challengeToAnswer(status, (name) => res.get(name), credentials);
    if (!accepted.ok) {
      log.warn({ status, problem: accepted.problem }, `${status} challenge not answered`);
      answer(new Error(accepted.problem));
      return;
    }
    this.credentialsSent = true;
    log.info({ status, realm: accepted.challenge.realm }, 'INVITE sent again with credentials');
    answer(null, credentials.username, credentials.password);
  }

  /** srf turns the 487 that answers it into a rejection of createUAC, which a settled attempt ignores */
  protected sendCancel(): boolean {
    if (!this.sent) return false;
    const { log } = this.request;
    try {
      this.sent.cancel({}, (err) => {
        if (err) log.warn({ err: err.message }, 'CANCEL not sent');
      });
    } catch (err) {
      log.warn({ err }, 'CANCEL not sent');
    }
    return true;
  }

  private onAnswer(dlg: Srf.Dialog): void {
    const { request } = this;
    const leg = new DrachtioLeg(dlg, {
      localSdp: request.sdp,
      delegate: this.delegate,
      log: request.log,
      byeTimeoutMs: this.context.byeTimeoutMs,
      // guarded before anything else can run: srf has the dialog from now on
      release: this.context.gate.guard(dlg.id, peerOf(dlg, request.requestUri, this.context.ccaiSources), request.log),
    });
    this.onAnswered(leg, Boolean(leg.remoteSdp));
  }
}

/**
 * The dialog's peer (../dialog-peer.ts): at once the address the 2xx came from, then the hosts of the request-URI
 * (where drachtio-server sent the INVITE) and of the 2xx's Contact and Record-Route, looked up as the embedded
 * backend looks them up (IPv4); a lookup that fails adds nothing.
 */
function peerOf(dlg: Srf.Dialog, requestUri: string, ccaiSources: CcaiSources): DialogPeer {
  const peer = new DialogPeer(ccaiSources, [dlg.res?.source_address]);
  const routes = splitHeaderList(dlg.res?.get('record-route') ?? '').map((route) => /<([^>]+)>/.exec(route)?.[1] ?? route);
  for (const uri of [requestUri, dlg.remote.uri, ...routes]) {
    resolveUriHost(uri, 4).then(
      (host) => peer.add(host),
      () => undefined,
    );
  }
  return peer;
}

/**
 * Our Contact over TCP and TLS. With `callingNumber` alone srf writes `sip:<user>@localhost` and drachtio-server
 * swaps in only its host and port, so the Contact says nothing of the transport: a bot that sends its BYE on a new
 * connection to it uses UDP (RFC 3263 §4.1) and never reaches us (issue 13). drachtio-server keeps a parameter we
 * write; re-INVITE and REFER answers reuse this Contact (`dlg.local.contact`). Over UDP srf's default stands.
 */
export function contactFor(requestUri: string, user: string): Record<string, string> {
  const uri = SipMessage.parseUri(requestUri);
  const transport = uri?.params.transport?.toLowerCase();
  if (!uri || (transport !== 'tcp' && transport !== 'tls')) return {};
  return { Contact: `<${uri.scheme}:${user}@localhost;transport=${transport}>` };
}

/**
 * srf's failures, classified (sip-notes §1.5): SipError is a final non-2xx response, unless drachtio-server made it
 * itself because it could not send (a transport failure); an Error coded EDRACHTIO is
 * drachtio-server refusing to send (e.g. "requested protocol/transport not available"); an AssertionError or a
 * destroyed socket means the control connection is gone.
 */
export function failureOf(err: unknown): SipFailure {
  if (err instanceof SipError && madeByDrachtio(err.res)) {
    return new SipFailure('transport', `drachtio-server could not send the INVITE: it answered ${err.status} ${err.reason ?? ''} itself`.trimEnd());
  }
  if (err instanceof SipError) return SipFailure.rejected(err.status, err.reason ?? '');
  const e = err as (Error & { code?: string }) | undefined;
  const message = e?.message ?? String(err);
  if (e?.name === 'AssertionError' || e?.code === 'ERR_ASSERTION' || e?.code === 'ESOCKETDESTROYED' || e?.code === 'EINVALIDSOCKET') {
    return new SipFailure('unavailable', `drachtio-server is not connected: ${message}`);
  }
  return new SipFailure('transport', `drachtio-server could not send the INVITE: ${message}`);
}
