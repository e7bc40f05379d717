import type { Logger } from 'pino';

/** Hot-path drops are logged at most once per interval, with how many were dropped since the last line. */
export const DROP_LOG_INTERVAL_MS = 10_000;

export class DropLog {
  private dropped = 0;
  private lastLogAt = -Infinity;

  constructor(
    private readonly log: Logger,
    private readonly message: string,
    private readonly intervalMs = DROP_LOG_INTERVAL_MS,
  ) {}

  note(reason: string, details: Record<string, unknown>): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.lastLogAt < this.intervalMs) return;
    this.log.warn({ ...details, reason, dropped: this.dropped }, this.message);
    this.dropped = 0;
    this.lastLogAt = now;
  }
}
