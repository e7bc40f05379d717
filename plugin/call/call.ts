import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { PluginConfig } from '../../config/schema.js';
import type { MediaClock } from '../../media/clock.js';
import type { RtpPortPool } from '../../media/port-pool.js';
import type { RtpSessionStats } from '../../media/rtp-session.js';
import type { AgentAssistSummary } from './agent-assist.js';
import { accountAllowed, type AuthenticatedUpgrade } from '../talkdesk/auth.js';
import type { BotLegOptions } from './bot-leg.js';
import { createBotSide, type BotSide, type BotSideConfig } from './bot-side.js';
import { CallEnds, stopCommandFor, type CallEnd } from './end.js';
import { Liveness, type Activity, type CallWatchdog } from './watchdog.js';
import type { EscalationPolicy } from './escalation.js';
import type { SipBackend } from '../sip/backend.js';
import { talkdeskHeaders } from '../sip/invite-target.js';
import type { TalkdeskFrame } from '../talkdesk/codec.js';
import { TalkdeskStream } from '../talkdesk/stream.js';

/** The settings a call reads: its side's, the Talkdesk stream's, the limits and the account allow-list. */
export type CallConfig = BotSideConfig & Pick<PluginConfig, 'talkdesk' | 'limits' | 'talkdeskAccountAllowlist'>;

export interface CallDeps {
  config: CallConfig;
  backend: SipBackend;
  clock: MediaClock;
  ports: RtpPortPool;
  escalation: EscalationPolicy;
  /** the process's one sweep over media timeouts and call length */
  watchdog: CallWatchdog;
  log: Logger;
  /** TEARDOWN_DEADLINE_MS unless given (tests) */
  teardownDeadlineMs?: number;
}

type StartFrame = Extract<TalkdeskFrame, { kind: 'start' }>;

/** The end of a call with what it carried: the 'call ended' log line, and what metrics count. */
export interface CallSummary extends CallEnd {
  durationMs: number;
  /** from the authenticated upgrade to the bot's answer; absent when it never answered */
  setupMs?: number;
  talkMs: number;
  digitsFromBot: number;
  /** Talkdesk `dtmf` frames sent on to the bot as RFC 4733 */
  digitsToBot: number;
  talkdesk: TalkdeskStream['stats'];
  rtp?: RtpSessionStats;
  /** agentassist=true: the legs (one per track, or one mixed) and what each carried */
  agentAssist?: AgentAssistSummary;
  /** the bot's BYE (or REFER) to our `stop`, farewell drain included; absent when the bot did not end the call */
  byeToStopMs?: number;
  /** p99 send lateness of the shared media clock: process-wide, every call since start (one clock for all) */
  sendLatenessP99Ms: number;
  /**
   * Release steps of the end that threw (each logged; the others ran regardless), and `overran-deadline` when the end
   * took longer than TEARDOWN_DEADLINE_MS. Absent when all went well.
   */
  teardownFailures?: TeardownFailure[];
}

/** Every leg's RTP stats in a call's summary (or its side's, live), whichever kind of bot side it has. */
export function legStats(summary: Pick<CallSummary, 'rtp' | 'agentAssist'>): RtpSessionStats[] {
  if (summary.agentAssist !== undefined) return summary.agentAssist.legs.flatMap((leg) => (leg.rtp === undefined ? [] : [leg.rtp]));
  return summary.rtp === undefined ? [] : [summary.rtp];
}

/** The end's release steps, in order (Call.end). */
export type TeardownStep = 'farewell-drain' | 'stop-to-talkdesk' | 'bot-legs' | 'talkdesk-socket';
export type TeardownFailure = TeardownStep | 'overran-deadline';

/**
 * The longest an end may take: the farewell drain's mark timeout, a BYE unanswered until its transaction times out
 * (RFC 3261 Timer F, 32 s) and the socket's close wait, twice, all fit well inside it. Past it something hangs that
 * should not: it is logged with the steps still running and counted, and the call is let go, so that a shutdown
 * waiting for every call is not held by one.
 */
export const TEARDOWN_DEADLINE_MS = 60_000;

/**
 * One Talkdesk stream and the SIP call it becomes, from the authenticated upgrade to the last released port.
 *
 *   waiting for `start` → INVITE (ringing) → connected: caller audio → RTP, bot RTP → `media` → end()
 *
 * Every way out (bot BYE, Talkdesk stop or close, INVITE failure, timeouts, shutdown) goes through `end()`, once.
 * The bot's side is a BotSide (plugin/call/bot-side.ts: one leg, or agent assist's listen-only legs) over the SipBackend
 * port, never a particular adapter, and the call never asks which kind it has: the side says how the bot ended it;
 * the call keeps the deadlines and the one way out.
 */
export class Call {
  readonly id: string;
  private log: Logger;
  private readonly stream: TalkdeskStream;
  private start: StartFrame | undefined;
  /** the bot's side: one leg, or agent assist's listen-only legs (plugin/call/bot-side.ts); set by connect() */
  private side: BotSide | undefined;
  /** the one setup deadline running: waiting for `start`, then for the bot to answer */
  private deadline: NodeJS.Timeout | undefined;
  private ending = false;
  private resolveFinished!: (summary: CallSummary) => void;
  /** Resolves with how the call ended and what it carried, once everything it held is released. Never rejects. */
  readonly finished = new Promise<CallSummary>((resolve) => (this.resolveFinished = resolve));
  private readonly startedAt = performance.now();
  private answeredAt: number | undefined;
  private digitsFromBot = 0;
  private byeToStopMs: number | undefined;
  private digitsToBot = 0;
  private teardownFailures: TeardownFailure[] | undefined;
  /** release steps running now: what a teardown past its deadline is still waiting for */
  private readonly releasing = new Set<TeardownStep>();
  /** leaves the watchdog's sweep; called when the end begins */
  private readonly unwatch: () => void;

  constructor(
    private readonly deps: CallDeps,
    ws: WebSocket,
    private readonly upgrade: AuthenticatedUpgrade,
    id: string,
  ) {
    this.id = id;
    this.log = deps.log.child({ call: id, botId: upgrade.params.botId });
    this.stream = new TalkdeskStream(ws, this.log, {
      onFrame: (frame) => this.guarded('talkdesk frame', () => this.onTalkdeskFrame(frame)),
      onClose: (code) => void this.end(CallEnds.talkdeskClosed(code)),
      onNotReading: (detail) => void this.end(CallEnds.error('talkdesk-not-reading', detail)),
    }, { listenOnly: upgrade.params.agentassist, notReadingMs: deps.config.talkdesk.notReadingMs });
    this.setDeadline(deps.config.talkdesk.startTimeoutMs, () =>
      CallEnds.error('start-timeout', 'no start frame from Talkdesk'),
    );
    const liveness = new Liveness(deps.config.limits, this.startedAt);
    this.unwatch = deps.watchdog.watch((now) => {
      const end = liveness.check(now, this.activity());
      if (end) void this.end(end);
    });
    // secretIndex: while a secret is rotated, which one this token used (never the secret itself)
    this.log.info({ sipuri: upgrade.params.sipuri, agentassist: upgrade.params.agentassist, secretIndex: upgrade.secretIndex }, 'talkdesk stream accepted');
  }

  private onTalkdeskFrame(frame: Exclude<TalkdeskFrame, { kind: 'ignored' | 'malformed' | 'mark' }>): void {
    switch (frame.kind) {
      case 'start':
        // the stream delivers only the first start (it counts and logs the others), so this runs once
        this.start = frame;
        this.connect(frame).catch((err: unknown) => this.failed('connect', err));
        return;
      case 'media':
        // Audio before the bot answers has nowhere to go; the playout buffer drops it until RTP starts.
        this.side?.write(frame.track, frame.payload);
        return;
      case 'stop':
        void this.end(CallEnds.talkdeskStop());
        return;
      case 'dtmf':
        this.onTalkdeskDigit(frame.digit);
        return;
      case 'connected':
        return;
    }
  }

  /** A key the caller pressed, to the bot as RFC 4733 once it has answered (RtpSession paces it on the clock). */
  private onTalkdeskDigit(digit: string): void {
    const to = this.side;
    if (this.answeredAt === undefined || to === undefined) {
      this.stream.ignored('dtmf from talkdesk before the bot answered: dropped');
      return;
    }
    // the session says why, once: no telephone-event in the answer; otherwise 32 digits already wait their turn
    if (!to.sendDigit(digit)) {
      this.stream.ignored('dtmf from talkdesk the bot cannot take: dropped');
      return;
    }
    this.digitsToBot++;
    // debug, not info: a flood of digits is paced to one per 160 ms, still a line per frame; 'call ended' counts them
    this.log.debug({ digit }, 'dtmf from talkdesk → bot (RFC 4733)');
  }

  /** The counters the watchdog compares between sweeps: no RTP is owed before the answer, nor by a bot on hold. */
  private activity(): Activity {
    return {
      talkdeskFrames: this.stream.stats.framesIn,
      botPackets: this.side?.botPackets() ?? [],
    };
  }

  /** `start` → RTP port → INVITE → answer → media flowing. */
  private async connect(start: StartFrame): Promise<void> {
    const { config, backend, clock, ports } = this.deps;
    this.log = this.log.child({ callSid: start.callSid, streamSid: start.streamSid, interactionId: start.interactionId });

    if (!accountAllowed(config.talkdeskAccountAllowlist, start.accountSid, start.accountId)) {
      await this.end(CallEnds.rejected('account-not-allowed', `talkdesk account ${start.accountSid ?? start.accountId ?? '(none)'}`));
      return;
    }
    if (this.ending) return; // a late `start` while the call ends: end() had no leg to hang up, so place none

    const leg = {
      config,
      backend,
      clock,
      ports,
      log: this.log,
      sipuri: this.upgrade.params.sipuri,
      headers: this.inviteHeaders(start),
    } satisfies Omit<BotLegOptions, 'events'>;
    this.setDeadline(config.sip.inviteTimeoutMs, () =>
      CallEnds.error('invite-timeout', `bot did not answer within ${config.sip.inviteTimeoutMs} ms`),
    );
    const side = createBotSide({
      ...leg,
      startedAt: this.startedAt,
      agentAssist: this.upgrade.params.agentassist,
      escalation: this.deps.escalation,
      events: {
        onEnd: (end) => void this.end(end),
        onAudio: (payload) => this.stream.sendMedia(payload),
        onDtmf: (digit, via) => {
          this.digitsFromBot++;
          this.log.info({ digit }, via === 'info' ? 'dtmf from bot (SIP INFO)' : 'dtmf from bot (RFC 4733)');
        },
      },
    });
    this.side = side;
    const failed = await side.connect();
    if (side.callId !== undefined) this.log = this.log.child({ sipCallId: side.callId });
    if (this.ending) return; // the legs have stopped where they were: end() hangs up whatever they hold
    this.answeredAt = side.answeredAt;
    if (this.answeredAt !== undefined) this.setDeadline(undefined);
    if (failed) await this.end(failed);
  }

  /** The Talkdesk ids that travel to the bot, in the headers SIP_HEADERS names. */
  private inviteHeaders(start: StartFrame): Record<string, string> {
    const params = this.upgrade.params;
    return talkdeskHeaders(this.deps.config.sip.headers, {
      callSid: start.callSid,
      streamSid: start.streamSid,
      interactionId: start.interactionId,
      accountSid: start.accountSid,
      botId: params.botId,
      accountId: params.accountId,
      sipuri: params.sipuri,
    });
  }

  /**
   * The one way out; idempotent. Order, and why:
   * 1. farewell drain (ok/escalate only): mark → echo, so Talkdesk plays the bot's last words before acting on stop;
   * 2. `stop` to Talkdesk (unless Talkdesk ended it), so Studio takes the exit that matches the outcome;
   * 3. BYE, or CANCEL while ringing, so the bot's leg never outlives the stream;
   * 4. RTP socket closed and its port back to the pool;
   * 5. the WebSocket closed (Talkdesk gets closeWaitMs to close first after our stop).
   */
  end(end: CallEnd): Promise<CallSummary> {
    if (!this.ending) {
      this.ending = true;
      const deadlineMs = this.deps.teardownDeadlineMs ?? TEARDOWN_DEADLINE_MS;
      const overrun = setTimeout(() => {
        (this.teardownFailures ??= []).push('overran-deadline');
        this.log.error({ deadlineMs, stillRunning: [...this.releasing] }, 'teardown overran its deadline: the call is let go');
        this.resolveFinished(this.summarize(end));
      }, deadlineMs);
      this.teardown(end)
        .catch((err: unknown) => this.log.error({ err }, 'teardown failed'))
        .finally(() => {
          clearTimeout(overrun);
          this.resolveFinished(this.summarize(end));
        });
    }
    return this.finished;
  }

  private async teardown(end: CallEnd): Promise<void> {
    const { talkdesk } = this.deps.config;
    const endedAt = performance.now();
    this.setDeadline(undefined);
    this.unwatch();
    const command = stopCommandFor(end.outcome);

    if (command === 'ok' || command === 'escalate') {
      await this.release('farewell-drain', async () => {
        // The bot's media is over (it hung up or referred); stop sending it caller audio while Talkdesk plays out.
        this.side?.stopMedia();
        const drained = await this.stream.drain(talkdesk.markTimeoutMs);
        this.log.debug({ drained }, 'farewell drain');
      });
    }
    if (command) {
      await this.release('stop-to-talkdesk', () => {
        this.stream.sendStop({
          command,
          ringGroup: end.ringGroup,
          accountSid: this.start?.accountSid,
          callSid: this.start?.callSid,
        });
        // ok and escalate are the bot's ending: how long Talkdesk waited for its stop after the bot's BYE or REFER
        if (command !== 'error') this.byeToStopMs = Math.round(performance.now() - endedAt);
      });
    }

    // BYE (X-Reason: the cause) or CANCEL on every leg the bot did not end; their RTP ports go back at once
    await Promise.all([
      this.release('bot-legs', () => this.side?.end(end.cause)),
      this.release('talkdesk-socket', () => this.stream.close(talkdesk.closeWaitMs)),
    ]);
    this.log.info(this.summarize(end), 'call ended');
  }

  /**
   * One release step of the end. Whatever it throws is logged and named in the summary, and the steps after it run
   * regardless: a drain that threw must not keep the bot's leg up, its RTP port taken and the socket open while the
   * registry forgets the call.
   */
  private async release(step: TeardownStep, run: () => unknown): Promise<void> {
    this.releasing.add(step);
    try {
      await run();
    } catch (err) {
      (this.teardownFailures ??= []).push(step);
      this.log.error({ err, step }, 'teardown step failed; the others still run');
    } finally {
      this.releasing.delete(step);
    }
  }

  /** Runs a handler of something a peer sent; a throw is a bug of ours, and it ends this call, not the process. */
  private guarded(what: string, handle: () => void): void {
    try {
      handle();
    } catch (err) {
      this.failed(what, err);
    }
  }

  private failed(what: string, err: unknown): void {
    this.log.error({ err, in: what }, 'internal error: the call ends');
    void this.end(CallEnds.error('internal-error', `${what}: ${err instanceof Error ? err.message : String(err)}`));
  }

  private summarize(end: CallEnd): CallSummary {
    const now = performance.now();
    return {
      ...end,
      durationMs: Math.round(now - this.startedAt),
      setupMs: this.answeredAt === undefined ? undefined : Math.round(this.answeredAt - this.startedAt),
      talkMs: this.answeredAt === undefined ? 0 : Math.round(now - this.answeredAt),
      digitsFromBot: this.digitsFromBot,
      digitsToBot: this.digitsToBot,
      ...this.side?.summary(),
      talkdesk: { ...this.stream.stats },
      byeToStopMs: this.byeToStopMs,
      sendLatenessP99Ms: this.deps.clock.stats.lateness.p99Ms,
      teardownFailures: this.teardownFailures,
    };
  }

  /**
   * What the call has carried so far, read by the metrics at scrape time rather than counted per packet: every leg's
   * RTP, the agent-assist legs' as well as the bidirectional call's one.
   */
  get carried(): { talkdesk: TalkdeskStream['stats']; rtp: RtpSessionStats[] } {
    return { talkdesk: this.stream.stats, rtp: legStats(this.side?.summary() ?? {}) };
  }

  /** Replaces the running deadline (or just clears it); when it fires, the call ends as `onExpiry` says. */
  private setDeadline(ms: number | undefined, onExpiry?: () => CallEnd): void {
    clearTimeout(this.deadline);
    this.deadline = ms === undefined ? undefined : setTimeout(() => void this.end(onExpiry!()), ms);
  }
}
