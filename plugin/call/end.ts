import type { SipFailure } from '../sip/errors.js';
import type { Escalation, Verdict } from './escalation.js';

/**
 * How a call ended, decided once by whoever ends it. Every path (bot BYE, Talkdesk stop or close, INVITE failure,
 * timeouts, shutdown) builds one and hands it to `Call.end()`, the single way out.
 *
 * `cause` is kebab-case so that it can double as a metric label and a grep-able log value.
 */
export type CallOutcome =
  | 'ok' // the bot finished the conversation
  | 'escalate' // the bot handed over to an agent
  | 'error' // the call could not be carried
  | 'caller-hangup' // Talkdesk ended the stream
  | 'rejected'; // refused by policy before any SIP

export interface CallEnd {
  readonly outcome: CallOutcome;
  readonly cause: string;
  readonly ringGroup?: string;
  readonly detail?: string;
}

/** The `stop.command` Talkdesk gets for an outcome; none when Talkdesk itself ended the stream. */
export function stopCommandFor(outcome: CallOutcome): 'ok' | 'escalate' | 'error' | undefined {
  switch (outcome) {
    case 'ok':
    case 'escalate':
      return outcome;
    case 'error':
    case 'rejected':
      return 'error';
    case 'caller-hangup':
      return undefined;
  }
}

export const CallEnds = {
  botBye(verdict: Verdict): CallEnd {
    return verdict.command === 'escalate'
      ? { outcome: 'escalate', cause: 'bot-escalate', ringGroup: verdict.ringGroup, detail: `rule ${verdict.rule}` }
      : { outcome: 'ok', cause: 'bot-bye' };
  },
  /** The bot transferred the call with a REFER: always an escalation (plugin/call/escalation.ts referVerdict). */
  botRefer(verdict: Escalation): CallEnd {
    return { outcome: 'escalate', cause: 'bot-refer', ringGroup: verdict.ringGroup, detail: `REFER, rule ${verdict.rule}` };
  },
  sipFailure(failure: SipFailure): CallEnd {
    return { outcome: 'error', cause: failure.cause, detail: failure.message };
  },
  talkdeskStop(): CallEnd {
    return { outcome: 'caller-hangup', cause: 'talkdesk-stop' };
  },
  talkdeskClosed(code: number): CallEnd {
    return { outcome: 'caller-hangup', cause: 'talkdesk-closed', detail: `websocket close ${code}` };
  },
  error(cause: string, detail?: string): CallEnd {
    return { outcome: 'error', cause, detail };
  },
  rejected(cause: string, detail?: string): CallEnd {
    return { outcome: 'rejected', cause, detail };
  },
} as const;
