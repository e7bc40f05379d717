import { isIPv6 } from 'node:net';
import { unmapped } from './client-address.js';

/**
 * Per-source limit on failed Talkdesk authentications: a client that fails `maxFailures` times within `windowMs` is
 * refused (429) for `blockMs` without its token being checked, so guessing tokens or hammering with bad ones costs
 * the attacker a round trip and us a map lookup.
 *
 * Memory is bounded whatever the spray: at most `maxEntries` sources are remembered (the least recently failed is
 * forgotten first), and expired entries are swept lazily from the old end of the table on every failure, so there is
 * no timer per source and none at all. A Map iterates in insertion order and every update re-inserts its key, so the
 * first keys are always the stalest.
 *
 * Not trusted: X-Forwarded-For and the like (anyone can send them). Behind a reverse proxy every client shares the
 * proxy's address; the proxy's own limits must protect it then (SECURITY.md).
 */
export interface AuthRateLimitOptions {
  maxFailures: number;
  windowMs: number;
  blockMs: number;
  maxEntries: number;
  now?: () => number;
}

/** 20 failures a minute is far beyond a misconfigured Studio flow retrying, far below a token-guessing rate. */
export const AUTH_RATE_LIMIT_DEFAULTS: AuthRateLimitOptions = {
  maxFailures: 20,
  windowMs: 60_000,
  blockMs: 5 * 60_000,
  maxEntries: 10_000,
};

interface Entry {
  /** start of the current counting window */
  since: number;
  failures: number;
  /** refused until then; 0 when not blocked */
  blockedUntil: number;
}

/** how many stale entries one failure may sweep: amortized O(1), and still keeps up with any insertion rate */
const SWEEP_PER_CALL = 4;

export class AuthRateLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly opts: Required<AuthRateLimitOptions>;

  constructor(opts: Partial<AuthRateLimitOptions> = {}) {
    this.opts = { ...AUTH_RATE_LIMIT_DEFAULTS, now: () => performance.now(), ...opts };
  }

  /** sources remembered now (for tests and the leak check) */
  get size(): number {
    return this.entries.size;
  }

  /** Milliseconds this source is still refused for, or 0 when it may try. */
  blockedFor(address: string | undefined): number {
    const entry = this.entries.get(sourceKey(address));
    if (!entry) return 0;
    const left = entry.blockedUntil - this.opts.now();
    return left > 0 ? Math.ceil(left) : 0;
  }

  /** Counts a failed authentication; true when this failure starts a block. */
  recordFailure(address: string | undefined): boolean {
    const { maxFailures, windowMs, blockMs, maxEntries } = this.opts;
    const now = this.opts.now();
    const key = sourceKey(address);
    this.sweep(now);
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key); // re-inserted below: the table stays ordered by last failure
    if (!entry || now - entry.since >= windowMs) entry = { since: now, failures: 0, blockedUntil: entry?.blockedUntil ?? 0 };
    entry.failures++;
    let blocked = false;
    if (entry.failures >= maxFailures && entry.blockedUntil <= now) {
      entry.blockedUntil = now + blockMs;
      entry.failures = 0;
      entry.since = now;
      blocked = true;
    }
    this.entries.set(key, entry);
    while (this.entries.size > maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return blocked;
  }

  private sweep(now: number): void {
    let visited = 0;
    for (const [key, entry] of this.entries) {
      if (visited++ >= SWEEP_PER_CALL) return;
      const stale = now - entry.since >= this.opts.windowMs && entry.blockedUntil <= now;
      if (!stale) return; // ordered by last failure: the rest is fresher
      this.entries.delete(key);
    }
  }
}

/**
 * The source an address counts as: IPv4 (and IPv4-mapped IPv6) as is, IPv6 by its /64, since one host commonly
 * owns a whole /64 and could otherwise rotate through 2^64 addresses.
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const plain = unmapped(address);
  if (!isIPv6(plain)) return plain;
  return `${expandIPv6(plain).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}
