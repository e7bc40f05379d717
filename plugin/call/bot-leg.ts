import type { Logger } from 'pino';
import type { PluginConfig } from '../../config/schema.js';
import type { MediaClock } from '../../media/clock.js';
import { LogLimiter } from '../../media/log-limiter.js';
import type { RtpPortPool } from '../../media/port-pool.js';
import { RtpSession, type RtpSessionStats } from '../../media/rtp-session.js';
import { buildOffer, parseAnswer } from '../../media/sdp.js';
import { SrtpNegotiation } from '../../media/srtp-negotiation.js';
import { CallEnds, type CallEnd } from './end.js';
import type { SipBackend, SipLeg, SipMessageView, OutgoingInvite } from '../sip/backend.js';
import { ccaiSourcesOf, DialogPeer, mediaMoveAllowed } from '../sip/dialog-peer.js';
import { isSipFailure } from '../sip/errors.js';
import { digitFromInfo } from '../sip/info-dtmf.js';
import { requestUri } from '../sip/invite-target.js';

/** What the bot does on a leg that only its owner can give a meaning to. */
export interface BotLegEvents {
  /** the bot hung up this leg (answered 200 by the backend): end() has nothing left to BYE */
  onBye(bye: SipMessageView): void;
  /** the bot asked for a transfer (answered 202 + NOTIFY by the backend); the leg stays up until end() */
  onRefer(refer: SipMessageView): void;
  /** the backend ended the leg itself (e.g. an expired session timer); end() still awaits its idempotent hangup() */
  onEnded(cause: string): void;
  /** the bot's audio; dropped when absent */
  onAudio?(payload: Buffer): void;
  /** a key the bot pressed: RFC 4733 on the RTP, or a SIP INFO (dtmf-relay) */
  onDtmf?(digit: string, via: 'rfc4733' | 'info'): void;
}

/** The settings a leg reads: where the INVITE goes and what it says, and the RTP side of it. */
export type BotLegConfig = Pick<PluginConfig, 'sip' | 'rtp'>;

export interface BotLegOptions {
  config: BotLegConfig;
  backend: SipBackend;
  clock: MediaClock;
  ports: RtpPortPool;
  log: Logger;
  /** the request-URI user (Talkdesk's `sipuri`) */
  sipuri: string;
  headers: Record<string, string>;
  /** performance.now() when the call this leg carries began: the 'bot answered' line then says `setupMs` */
  startedAt?: number;
  events: BotLegEvents;
}

/**
 * One SIP call to the bot with its own RTP session: port → INVITE → answer (SDP, SRTP) → media, then BYE or CANCEL.
 * The bidirectional call places one (plugin/call/call.ts), the agent-assist stream one or two (plugin/call/agent-assist.ts).
 * The owner keeps the deadlines and gives the bot's BYE, REFER or failure its meaning; the leg only reports them.
 */
export class BotLeg {
  private rtp: RtpSession | undefined;
  private srtp: SrtpNegotiation | undefined;
  private invite: OutgoingInvite | undefined;
  private leg: SipLeg | undefined;
  /** the bot sent BYE: nothing left to hang up */
  private endedByBot = false;
  private ending = false;
  /** an unusable early SDP was logged: a bot repeating its 183 (or a hostile one) gets one line a call */
  private earlyRefusalLogged = false;
  private earlyRemote: string | undefined;
  private answered: number | undefined;
  private log: Logger;
  /**
   * Where a re-INVITE may move the bot's media: the addresses the bot gave in this call's SDPs (2xx, early 183) and
   * CCAI_SOURCE_ADDRESSES (./sip/dialog-peer.ts). The SIP backend has already refused a stranger's re-INVITE; this
   * holds even against the bot's own, or one through an adapter that cannot tell the source.
   */
  private readonly mediaPeer: DialogPeer;
  /** a re-INVITE naming an address the bot never gave: one line per interval, however many come */
  private readonly refusedMoveLog = new LogLimiter();

  constructor(private readonly opts: BotLegOptions) {
    this.log = opts.log;
    this.mediaPeer = new DialogPeer(ccaiSourcesOf(opts.config.sip.ccaiSourceAddresses));
  }

  /**
   * Resolves undefined once media flows, or with the end it calls for (no port, rejected, bad answer…). Either way,
   * whatever it holds is released by end(), which may also run meanwhile: connect() then stops where it is.
   */
  async connect(): Promise<CallEnd | undefined> {
    const { config, backend, clock, ports, events } = this.opts;
    try {
      this.rtp = await RtpSession.open({
        pool: ports,
        clock,
        log: this.log,
        maxPlayoutMs: config.rtp.maxPlayoutMs,
        delegate: { onAudio: (payload) => events.onAudio?.(payload), onDtmf: (digit) => events.onDtmf?.(digit, 'rfc4733') },
      });
    } catch (err) {
      return CallEnds.error('no-rtp-port', (err as Error).message);
    }
    if (this.ending) {
      this.rtp.close();
      return undefined;
    }

    this.srtp = new SrtpNegotiation(config.rtp.srtp);
    this.invite = backend.invite({
      requestUri: requestUri(this.opts.sipuri, config.sip),
      fromUser: config.sip.fromUser,
      ...(config.sip.auth === undefined ? {} : { credentials: config.sip.auth }),
      headers: this.opts.headers,
      sdp: buildOffer({ address: config.rtp.advertisedAddress, port: this.rtp.localPort, srtp: this.srtp.offer }),
      log: this.log,
      delegate: {
        onProgress: (status, sdp) => this.onProgress(status, sdp),
        onBye: (bye) => {
          this.endedByBot = true;
          events.onBye(bye);
        },
        onRemoteSdp: (sdp) => this.onRemoteSdp(sdp),
        onInfo: (info) => {
          const digit = digitFromInfo(info);
          if (digit !== undefined) events.onDtmf?.(digit, 'info');
          else this.log.info({ contentType: info.get('content-type') }, 'INFO from bot');
        },
        onRefer: (refer) => events.onRefer(refer),
        // the backend has sent its own BYE (or has none to send): end()'s hangup() is then the same idempotent call
        onEnded: (cause) => events.onEnded(cause),
      },
    });

    let leg: SipLeg;
    try {
      leg = await this.invite.answered;
    } catch (err) {
      return isSipFailure(err) ? CallEnds.sipFailure(err) : CallEnds.error('sip-internal', String(err));
    }
    this.leg = leg;
    this.log = this.log.child({ sipCallId: leg.callId });
    if (this.ending) {
      // end() ran between the 2xx and here, when there was no leg to BYE yet; hangup() is idempotent
      void leg.hangup({ 'X-Reason': 'ended-while-answering' });
      return undefined;
    }
    this.answered = performance.now();
    const answer = parseAnswer(leg.remoteSdp);
    if (!answer.ok) return CallEnds.error('bad-answer-sdp', answer.error);
    this.mediaPeer.add(answer.value.address);
    const media = this.srtp.answer(answer.value);
    if (!media.ok) return CallEnds.error('srtp-refused', media.error);
    if (media.plainBecause) this.log.warn({ reason: media.plainBecause }, 'SRTP offered but not taken up: plain RTP for this call');
    this.rtp.start(media.remote);
    const { startedAt } = this.opts;
    const setupMs = startedAt === undefined ? undefined : Math.round(this.answered - startedAt);
    this.log.info({ remote: `${answer.value.address}:${answer.value.port}`, srtp: this.srtp.secure, setupMs }, 'bot answered');
    return undefined;
  }

  /** Audio for the bot; dropped before the answer (the RTP session is not sending yet). */
  write(mulaw: Uint8Array): void {
    this.rtp?.write(mulaw);
  }

  sendDigit(digit: string): boolean {
    return this.rtp?.sendDigit(digit) ?? false;
  }

  /** Packets accepted from the bot, or undefined while none are owed (not answered, early media only, hold, recvonly answer). */
  get botPackets(): number | undefined {
    return this.leg !== undefined && this.rtp?.botSends ? this.rtp.packetsAccepted : undefined;
  }

  /** performance.now() at the 2xx, once connect() has taken it (undefined if end() came first) */
  get answeredAt(): number | undefined {
    return this.answered;
  }

  get callId(): string | undefined {
    return this.leg?.callId;
  }

  get stats(): RtpSessionStats | undefined {
    return this.rtp?.stats;
  }

  /**
   * The bot's media is over while its leg stays up (a REFER is BYEd only after Talkdesk has its `stop`): the RTP
   * session closes and its port goes back. Idempotent; end() still hangs up.
   */
  stopMedia(): void {
    this.rtp?.close();
  }

  /**
   * BYE with X-Reason, or CANCEL while ringing, or nothing when the bot sent BYE; then the RTP port, at once rather
   * than after the BYE's answer; resolves when the BYE is answered or timed out. Idempotent.
   */
  async end(cause: string): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    let bye: Promise<void> | undefined;
    try {
      if (this.endedByBot) return;
      // Still ringing (or not yet sent): cancel. If the 2xx wins the race, the backend ACKs and BYEs it itself.
      if (this.leg) bye = this.leg.hangup({ 'X-Reason': cause });
      else this.invite?.cancel();
    } finally {
      this.stopMedia();
    }
    await bye;
  }

  /**
   * A 1xx; with SDP, the bot's early answer: its packets are taken from then on (its prompt goes to Talkdesk as it
   * comes), while caller audio waits for the 2xx, which connect() still applies in full and which may move the media.
   * The early SDP passes the 2xx's checks (SRTP included, so plain RTP is never taken where SRTP is required); one
   * that fails them is logged once and the call waits for the 2xx. No RTP is owed before the 2xx (botPackets).
   */
  private onProgress(status: number, sdp: string | undefined): void {
    this.log.info({ status, earlyMedia: sdp !== undefined }, 'bot ringing');
    if (sdp === undefined || this.ending || this.leg !== undefined) return;
    const answer = parseAnswer(sdp);
    const media = answer.ok ? this.srtp!.answer(answer.value) : answer;
    if (!media.ok) {
      if (!this.earlyRefusalLogged) {
        this.earlyRefusalLogged = true;
        this.log.warn({ status, error: media.error }, 'early media SDP unusable: waiting for the answer (logged once a call)');
      }
      return;
    }
    this.rtp?.receive(media.remote);
    this.mediaPeer.add(media.remote.address);
    const remote = `${media.remote.address}:${media.remote.port}`;
    // a bot repeating its 183 says nothing new: one line per early address, however many come
    if (remote === this.earlyRemote) return;
    this.earlyRemote = remote;
    this.log.info({ status, remote, srtp: this.srtp!.secure }, 'bot early media');
  }

  private onRemoteSdp(sdp: string): void {
    const answer = parseAnswer(sdp);
    // before SRTP sees it: a refused move must leave the negotiation as it was
    if (answer.ok && !mediaMoveAllowed(this.mediaPeer, answer.value.address)) {
      const suppressed = this.refusedMoveLog.take();
      if (suppressed >= 0) {
        this.log.warn(
          { address: answer.value.address, known: this.mediaPeer.addresses, suppressed },
          're-INVITE names a media address the bot never gave; media unchanged',
        );
      }
      return;
    }
    const media = answer.ok ? this.srtp!.reoffer(answer.value) : answer;
    if (!media.ok) {
      this.log.warn({ error: media.error }, 're-INVITE SDP unusable; media unchanged');
      return;
    }
    this.rtp?.setRemote(media.remote);
    this.log.info({ remote: `${media.remote.address}:${media.remote.port}`, srtp: this.srtp!.secure }, 'bot moved its media');
  }
}
