import { parseParams } from './header-fields.js';

/**
 * RFC 4028 session timers, the parts a UAC that never asks for one needs: we offer `Supported: timer`; the bot's 2xx
 * may then impose Session-Expires and say who refreshes. Pure data and one timer; the leg sends the refreshes and
 * the BYE.
 */

/** who refreshes the session, from our side: RFC 4028's `uac`/`uas` depend on who sent the message */
export type Refresher = 'us' | 'them';

export interface SessionTerms {
  /** the session interval, seconds */
  seconds: number;
  refresher: Refresher;
  /** the bot's Min-SE, seconds, when it told us one (422 or a Min-SE header) */
  minSe?: number;
}

/** The value of Session-Expires (`x` compact form), or undefined when absent or unreadable. */
export function readSessionExpires(get: (name: string) => string | undefined): { seconds: number; refresher?: 'uac' | 'uas' } | undefined {
  const value = get('session-expires') ?? get('x');
  if (value === undefined) return undefined;
  const [delta = '', ...rest] = value.split(';');
  const seconds = Number(delta.trim());
  if (!Number.isInteger(seconds) || seconds <= 0) return undefined;
  const refresher = parseParams(rest.join(';')).refresher?.toLowerCase();
  return refresher === 'uac' || refresher === 'uas' ? { seconds, refresher } : { seconds };
}

export function readMinSe(get: (name: string) => string | undefined): number | undefined {
  const seconds = Number((get('min-se') ?? '').split(';')[0]!.trim());
  return Number.isInteger(seconds) && seconds > 0 ? seconds : undefined;
}

/**
 * The terms a 2xx to a request *we* sent sets (§7.2): `uac` is us. A 2xx without Session-Expires keeps the
 * interval we asked for, if we asked, with us refreshing; otherwise there is no session timer. A Session-Expires
 * without `refresher` is taken as ours to refresh (the safe side: a refresh too many never ends a call).
 */
export function termsFromAnswer(
  get: (name: string) => string | undefined,
  asked: SessionTerms | undefined,
): SessionTerms | undefined {
  const se = readSessionExpires(get);
  const minSe = readMinSe(get) ?? asked?.minSe;
  if (!se) return asked;
  return { seconds: se.seconds, refresher: se.refresher === 'uas' ? 'them' : 'us', ...(minSe ? { minSe } : {}) };
}

/**
 * The terms a refresh the *bot* sent sets (§9): `uac` is the bot; without `refresher` the bot, which asked, is
 * taken to refresh. Undefined without Session-Expires.
 */
export function termsFromRequest(get: (name: string) => string | undefined, current: SessionTerms | undefined): SessionTerms | undefined {
  const se = readSessionExpires(get);
  if (!se) return undefined;
  const minSe = readMinSe(get) ?? current?.minSe;
  return { seconds: se.seconds, refresher: se.refresher === 'uas' ? 'us' : 'them', ...(minSe ? { minSe } : {}) };
}

/**
 * When to act (§10): the refresher refreshes at half the interval; the other side, hearing no refresh, sends BYE
 * at the interval minus the lesser of 32 s and a third of it.
 */
export function dueInMs(terms: SessionTerms, secondMs: number): number {
  const interval = terms.seconds * secondMs;
  return terms.refresher === 'us' ? interval / 2 : interval - Math.min(32 * secondMs, interval / 3);
}

/** One pending session-timer action (refresh or expiry), re-armed by every negotiation. */
export class SessionTimer {
  private timer: NodeJS.Timeout | undefined;
  terms: SessionTerms | undefined;

  constructor(
    private readonly secondMs: number,
    private readonly act: (terms: SessionTerms) => void,
  ) {}

  /** (Re)starts the clock on these terms; undefined turns the timer off. */
  arm(terms: SessionTerms | undefined): void {
    this.stop();
    this.terms = terms;
    if (!terms) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.act(terms);
    }, dueInMs(terms, this.secondMs));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
