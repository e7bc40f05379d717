/** what a lookup gives the cache: its answer and how long that answer may be kept */
export interface Expiring<T> {
  value: T;
  ttlMs: number;
}

/**
 * DNS answers kept for their TTL (RFC 1035 §3.2.1), at most `maxEntries` of them: a CCAI name is looked up once per
 * TTL, not once per call, and concurrent calls share the lookup in flight. A failed lookup is not kept (the next call
 * asks again); an answer "no such record" is a value like any other and is kept for the time its lookup gives it.
 * When full, the entry stored longest ago goes first (a Map keeps insertion order).
 */
export class DnsCache {
  private readonly entries = new Map<string, { answer: Promise<unknown>; expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    /** ms; injected for tests */
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached answer for `key`, or `lookup`'s, which is then kept until its TTL runs out. */
  get<T>(key: string, lookup: () => Promise<Expiring<T>>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > this.now()) return hit.answer as Promise<T>;
    this.entries.delete(key);
    const entry = { answer: Promise.resolve() as Promise<unknown>, expiresAt: Infinity };
    entry.answer = lookup().then(
      ({ value, ttlMs }) => {
        entry.expiresAt = this.now() + ttlMs;
        return value;
      },
      (err: unknown) => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
        throw err;
      },
    );
    this.store(key, entry);
    return entry.answer as Promise<T>;
  }

  private store(key: string, entry: { answer: Promise<unknown>; expiresAt: number }): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, entry);
  }
}
