import type { PluginConfig } from '../../config/schema.js';
import type { RtpSessionStats } from '../../media/rtp-session.js';
import { AgentAssist, type AgentAssistSummary } from './agent-assist.js';
import { BotLeg, type BotLegConfig, type BotLegOptions } from './bot-leg.js';
import { CallEnds, type CallEnd } from './end.js';
import { referVerdict, type EscalationPolicy } from './escalation.js';

/**
 * The bot's side of a call, whatever its kind: the bidirectional call's one leg, or the agent-assist stream's one or
 * two listen-only legs (plugin/call/agent-assist.ts). The call drives it through this and never asks which it is; each
 * kind gives the bot's BYE, REFER and failures their meaning and reports it as the call's end.
 */
export interface BotSide {
  /** Places every leg; resolves with the first failure's end, or undefined once the side carries media. */
  connect(): Promise<CallEnd | undefined>;
  /** performance.now() when the side answered; undefined before, or if the call ended first */
  readonly answeredAt: number | undefined;
  /** the SIP Call-ID for the call's log lines, when there is a single one */
  readonly callId: string | undefined;
  /** a `media` frame's audio, by its track (the bidirectional stream delivers only the caller's) */
  write(track: string | undefined, mulaw: Uint8Array): void;
  /** a key the caller pressed, as RFC 4733; false when it cannot go */
  sendDigit(digit: string): boolean;
  /** per leg, the packets accepted from the bot, or undefined while none are owed: the watchdog's view */
  botPackets(): Array<number | undefined>;
  /** the bot's media is over while its legs stay up (the farewell drain): RTP closed, ports back */
  stopMedia(): void;
  /** BYE, or CANCEL while ringing, on every leg the bot did not end; their ports back at once. Idempotent. */
  end(cause: string): Promise<void>;
  /** what the 'call ended' line carries for this side: every leg's RTP stats (call.ts's legStats reads them) */
  summary(): { rtp?: RtpSessionStats; agentAssist?: AgentAssistSummary };
}

/** What the call hears from its bot side. */
export interface BotSideEvents {
  /** the bot ended the call (BYE, REFER) or the backend did: how, for the call to end with */
  onEnd(end: CallEnd): void;
  /** the bot's audio, for Talkdesk */
  onAudio(payload: Buffer): void;
  /** a key the bot pressed */
  onDtmf(digit: string, via: 'rfc4733' | 'info'): void;
}

/** A leg's settings, and what the side adds: agent assist's mode, the escalation rules' default ring group. */
export type BotSideConfig = BotLegConfig & Pick<PluginConfig, 'agentAssist' | 'escalation'>;

export interface BotSideOptions extends Omit<BotLegOptions, 'events' | 'config'> {
  config: BotSideConfig;
  /** Talkdesk's `agentassist=true`: listen-only legs, as AGENT_ASSIST_CALLS says */
  agentAssist: boolean;
  escalation: EscalationPolicy;
  events: BotSideEvents;
}

export function createBotSide(opts: BotSideOptions): BotSide {
  const { agentAssist, escalation, events, ...leg } = opts;
  if (agentAssist) {
    return new AgentAssist({
      ...leg,
      mode: leg.config.agentAssist.calls,
      // listen-only: nothing goes back to Talkdesk, and there is no one to transfer to
      events: {
        onBye: () => events.onEnd({ outcome: 'ok', cause: 'bot-bye', detail: 'agent-assist leg' }),
        onRefer: () => events.onEnd({ outcome: 'ok', cause: 'bot-refer', detail: 'agent-assist: nothing to transfer' }),
        onEnded: (cause) => events.onEnd(CallEnds.error(cause, 'the SIP backend ended an agent-assist leg')),
      },
    });
  }
  return new BidirectionalSide(leg, escalation, events);
}

/**
 * The bidirectional call's one leg. The bot's BYE ends the call as the escalation rules read it (ok, or escalate
 * with a ring group); a REFER is always an escalation, its ring group from the same rules or the Refer-To target.
 */
class BidirectionalSide implements BotSide {
  private readonly leg: BotLeg;

  constructor(opts: Omit<BotSideOptions, 'events' | 'agentAssist' | 'escalation'>, escalation: EscalationPolicy, events: BotSideEvents) {
    const { log, config } = opts;
    this.leg = new BotLeg({
      ...opts,
      events: {
        onBye: (bye) => events.onEnd(CallEnds.botBye(escalation(bye))),
        onRefer: (refer) => {
          const verdict = referVerdict(escalation, refer, config.escalation.defaultRingGroup);
          log.info({ referTo: refer.get('refer-to'), ringGroup: verdict.ringGroup, rule: verdict.rule }, 'REFER from bot');
          // the leg is still up: the call's end BYEs it (bot-refer)
          events.onEnd(CallEnds.botRefer(verdict));
        },
        onEnded: (cause) => events.onEnd(CallEnds.error(cause, 'the SIP backend ended the leg')),
        onAudio: events.onAudio,
        onDtmf: events.onDtmf,
      },
    });
  }

  connect(): Promise<CallEnd | undefined> {
    return this.leg.connect();
  }

  get answeredAt(): number | undefined {
    return this.leg.answeredAt;
  }

  get callId(): string | undefined {
    return this.leg.callId;
  }

  write(_track: string | undefined, mulaw: Uint8Array): void {
    this.leg.write(mulaw);
  }

  sendDigit(digit: string): boolean {
    return this.leg.sendDigit(digit);
  }

  botPackets(): Array<number | undefined> {
    return [this.leg.botPackets];
  }

  stopMedia(): void {
    this.leg.stopMedia();
  }

  end(cause: string): Promise<void> {
    return this.leg.end(cause);
  }

  summary(): { rtp?: RtpSessionStats } {
    const stats = this.leg.stats;
    return stats === undefined ? {} : { rtp: { ...stats } };
  }
}
