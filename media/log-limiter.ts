/**
 * Lets a hot-path warning through at most once per interval, so one misbehaving peer (50 bad packets a second) or
 * one throwing sink cannot flood the log. LiveKit does the same for media source changes (at most every 10 s).
 */
export class LogLimiter {
  private nextAllowedAt = Number.NEGATIVE_INFINITY;
  private suppressedSinceLast = 0;

  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * -1 when this line must be swallowed; otherwise (≥ 0) it may be logged, and the value is how many were swallowed
   * since the last one, so the line that gets through can say how much was hidden.
   */
  take(): number {
    const t = this.now();
    if (t < this.nextAllowedAt) {
      this.suppressedSinceLast++;
      return -1;
    }
    this.nextAllowedAt = t + this.intervalMs;
    const suppressed = this.suppressedSinceLast;
    this.suppressedSinceLast = 0;
    return suppressed;
  }
}
