import { sourceKey } from '../../talkdesk/auth-rate-limit.js';

/**
 * At most one event per source address per interval: what lets us answer a request nobody asked for (an
 * out-of-dialog INVITE from a scanner) without becoming a reflector toward a spoofed source. Sources are keyed like
 * the failed-authentication limit (IPv6 by its /64). Memory is bounded: entries are kept in the order they were
 * granted, so the expired ones are at the front and swept lazily on every call, and past `maxEntries` the oldest
 * is forgotten. No timer.
 */
export class PerSourceInterval {
  private readonly grantedAt = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** sources remembered now (for tests and the leak check) */
  get size(): number {
    return this.grantedAt.size;
  }

  /** true when `address` may have one now (and it is counted); false while its last one is within the interval */
  take(address: string): boolean {
    const now = this.now();
    for (const [key, at] of this.grantedAt) {
      if (now - at < this.intervalMs) break; // granted in order: the rest is fresher
      this.grantedAt.delete(key);
    }
    const key = sourceKey(address);
    if (this.grantedAt.has(key)) return false;
    this.grantedAt.set(key, now);
    if (this.grantedAt.size > this.maxEntries) this.grantedAt.delete(this.grantedAt.keys().next().value!);
    return true;
  }
}
