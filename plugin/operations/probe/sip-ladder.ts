import { watchInvites, type InviteRequest, type LegDelegate, type OutgoingInvite, type SipBackend, type SipLeg, type SipMessageView } from '../../sip/backend.js';
import { isSipFailure } from '../../sip/errors.js';

/** One line of the ladder: what went which way, when (ms after the INVITE), and the headers that matter. */
export interface LadderStep {
  atMs: number;
  /** → we sent, ← the bot sent, ✗ the attempt failed without a message (timeout, transport) */
  dir: '→' | '←' | '✗';
  line: string;
  headers?: Record<string, string>;
}

/**
 * The SIP of the probe's call, as the call's port sees it (plugin/sip/backend.ts), so it reads the same with either
 * backend: what we asked for and what the bot answered and sent. The messages a backend handles on its own (100
 * Trying, ACK, the 200 to the bot's BYE, the 202 and NOTIFY to its REFER) are written where they go, marked so.
 */
export class SipLadder {
  readonly steps: LadderStep[] = [];
  requestUri: string | undefined;
  /** the 2xx's SDP */
  answerSdp: string | undefined;
  /** ms after the INVITE */
  answeredAtMs: number | undefined;
  /** performance.now() of the INVITE: the ladder's zero */
  startedAt = 0;
  private answeredListeners: Array<() => void> = [];

  /** `headerNames`: lower-case names whose values the ladder shows on the bot's requests (escalation rules' and the usual) */
  constructor(private readonly headerNames: ReadonlySet<string>) {}

  /** The backend every call uses, watched: the probe's one call is the only one. */
  watch(backend: SipBackend): SipBackend {
    return watchInvites(backend, (request) => this.invite(backend, request));
  }

  /** Runs once the bot has answered (2xx). */
  onAnswered(listener: () => void): void {
    this.answeredListeners.push(listener);
  }

  private invite(backend: SipBackend, request: InviteRequest): OutgoingInvite {
    this.startedAt = performance.now();
    this.requestUri = request.requestUri;
    this.add('→', `INVITE ${request.requestUri}`, request.headers);
    const outgoing = backend.invite({ ...request, delegate: this.delegate(request.delegate) });
    let settled = false;
    const answered = outgoing.answered.then(
      (leg) => {
        settled = true;
        this.answerSdp = leg.remoteSdp;
        this.answeredAtMs = this.now();
        this.add('←', '200 OK (the answer, SDP)');
        this.add('→', 'ACK (sent by the backend)');
        for (const listener of this.answeredListeners.splice(0)) listener();
        return this.leg(leg);
      },
      (err: unknown) => {
        settled = true;
        if (isSipFailure(err) && err.status !== undefined) this.add('←', `${err.status} ${err.reason ?? ''}`.trim());
        else this.add('✗', isSipFailure(err) ? `${err.kind}: ${err.message}` : String(err));
        throw err;
      },
    );
    return {
      answered,
      cancel: () => {
        // after the final answer a cancel is a no-op (the port's contract): nothing goes out
        if (!settled) this.add('→', 'CANCEL');
        outgoing.cancel();
      },
    };
  }

  private delegate(inner: LegDelegate): LegDelegate {
    return {
      onProgress: (status, sdp) => {
        this.add('←', `${status}${sdp === undefined ? '' : ' (early media, SDP)'}`);
        inner.onProgress?.(status, sdp);
      },
      onBye: (bye) => {
        this.add('←', 'BYE', this.shown(bye));
        this.add('→', '200 OK (sent by the backend)');
        inner.onBye(bye);
      },
      onRefer: (refer) => {
        this.add('←', 'REFER', this.shown(refer));
        this.add('→', '202 Accepted, NOTIFY (sent by the backend)');
        inner.onRefer(refer);
      },
      onRemoteSdp: (sdp) => {
        this.add('←', 're-INVITE or UPDATE with a new SDP; answered 200 by the backend');
        inner.onRemoteSdp(sdp);
      },
      onInfo: (info) => {
        this.add('←', 'INFO', { 'content-type': info.get('content-type') ?? '', body: info.body.trim() });
        inner.onInfo?.(info);
      },
      onEnded: (cause) => {
        this.add('✗', `the backend ended the leg: ${cause}`);
        if (inner.onEnded) inner.onEnded(cause);
        else inner.onBye({ headers: {}, body: '', get: () => undefined, has: () => false });
      },
    };
  }

  private leg(leg: SipLeg): SipLeg {
    return {
      callId: leg.callId,
      remoteSdp: leg.remoteSdp,
      hangup: async (headers) => {
        this.add('→', 'BYE', headers);
        await leg.hangup(headers);
        this.add('←', 'BYE answered (or timed out)');
      },
    };
  }

  private shown(message: SipMessageView): Record<string, string> {
    const shown: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.headers)) {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-') || this.headerNames.has(lower)) shown[name] = value;
    }
    return shown;
  }

  private now(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  private add(dir: LadderStep['dir'], line: string, headers?: Record<string, string>): void {
    this.steps.push({ atMs: this.now(), dir, line, ...(headers && Object.keys(headers).length > 0 ? { headers } : {}) });
  }
}
