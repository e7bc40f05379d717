import { TwoTrackMixer } from '../../media/mix.js';
import type { RtpSessionStats } from '../../media/rtp-session.js';
import { BotLeg, type BotLegEvents, type BotLegOptions } from './bot-leg.js';
import type { BotSide } from './bot-side.js';
import type { CallEnd } from './end.js';

/**
 * Kore's agent-assist stream (`agentassist=true`): Talkdesk's unidirectional stream carries the caller (`inbound`)
 * and the agent (`outbound`), and takes nothing back (protocol notes §2.2, §5). Both tracks go to the bot, as
 * AGENT_ASSIST_CALLS says:
 *
 * - `two`: one SIP call per track, placed together, each INVITE saying which track it carries;
 * - `one`: a single call carrying both tracks mixed (media/mix.ts: the only place audio is transcoded).
 *
 * The bot's audio has nowhere to go and is dropped; the call ends when the bot hangs up (or refers) any leg, or the
 * stream ends, and then every leg is hung up.
 */

/** The INVITE header naming the track a leg carries. */
export const TRACK_HEADER = 'X-Talkdesk-Track';
export type LegTrack = 'inbound' | 'outbound' | 'mixed';

export interface AgentAssistOptions extends Omit<BotLegOptions, 'events'> {
  mode: 'two' | 'one';
  /** what the bot did on any leg; the call decides what it means */
  events: Omit<BotLegEvents, 'onAudio' | 'onDtmf'>;
}

export interface AgentAssistSummary {
  mode: 'two' | 'one';
  legs: Array<{ track: LegTrack; sipCallId?: string; rtp?: RtpSessionStats }>;
}

export class AgentAssist implements BotSide {
  private readonly legs: Array<{ track: LegTrack; leg: BotLeg }>;
  private readonly mixer: TwoTrackMixer | undefined;
  private answered: number | undefined;
  /** one Call-ID per leg: the call's log lines carry none, each leg's carry its own */
  readonly callId = undefined;

  constructor(private readonly opts: AgentAssistOptions) {
    const tracks: LegTrack[] = opts.mode === 'two' ? ['inbound', 'outbound'] : ['mixed'];
    this.legs = tracks.map((track) => ({
      track,
      leg: new BotLeg({
        ...opts,
        log: opts.log.child({ track }),
        headers: { ...opts.headers, [TRACK_HEADER]: track },
        events: opts.events, // no onAudio: listen-only, the bot's audio is dropped
      }),
    }));
    const mixed = this.legs[0]!.leg;
    this.mixer = opts.mode === 'one' ? new TwoTrackMixer((mulaw) => mixed.write(mulaw)) : undefined;
  }

  /**
   * Every leg at once; resolves undefined when all carry media, or with the first failure's end as soon as it comes,
   * so that a rejected leg ends the call (and cancels the other) without waiting for the other's answer.
   */
  async connect(): Promise<CallEnd | undefined> {
    const failed = await new Promise<CallEnd | undefined>((resolve, reject) => {
      let connecting = this.legs.length;
      for (const { leg } of this.legs) {
        // a leg that throws fails the whole connect, as the bidirectional call's does (Call.failed)
        leg.connect().then((end) => {
          if (end !== undefined) resolve(end);
          else if (--connecting === 0) resolve(undefined);
        }, reject);
      }
    });
    // a leg that came back without an answer was ended meanwhile: the call is ending
    if (failed !== undefined || this.legs.some(({ leg }) => leg.answeredAt === undefined)) return failed;
    this.answered = performance.now();
    const { startedAt, log, mode } = this.opts;
    log.info({ mode, setupMs: startedAt === undefined ? undefined : Math.round(this.answered - startedAt) }, 'agent-assist legs answered');
    return undefined;
  }

  get answeredAt(): number | undefined {
    return this.answered;
  }

  /** A `media` frame's audio, by its track (none = inbound, protocol notes §8.3). */
  write(track: string | undefined, mulaw: Uint8Array): void {
    const outbound = track === 'outbound';
    if (this.mixer) this.mixer.push(outbound ? 1 : 0, mulaw);
    else this.legs[outbound ? 1 : 0]!.leg.write(mulaw);
  }

  /** A key the caller pressed: to the caller's leg (the mixed one in `one` mode). */
  sendDigit(digit: string): boolean {
    return this.legs[0]!.leg.sendDigit(digit);
  }

  /** One entry per leg, for the watchdog. */
  botPackets(): Array<number | undefined> {
    return this.legs.map(({ leg }) => leg.botPackets);
  }

  stopMedia(): void {
    for (const { leg } of this.legs) leg.stopMedia();
  }

  /** Hangs up every leg the bot has not (BYE with X-Reason, or CANCEL while ringing) and releases their ports. */
  async end(cause: string): Promise<void> {
    await Promise.all(this.legs.map(({ leg }) => leg.end(cause)));
  }

  summary(): { agentAssist: AgentAssistSummary } {
    return {
      agentAssist: {
        mode: this.opts.mode,
        legs: this.legs.map(({ track, leg }) => ({ track, sipCallId: leg.callId, rtp: leg.stats })),
      },
    };
  }
}
