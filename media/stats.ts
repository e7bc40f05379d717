/**
 * Fixed-bucket histogram for lateness in milliseconds: recording is O(1) and allocation-free, so the clock can feed
 * it on every step; percentiles are computed only when someone reads them.
 */
export class LatencyHistogram {
  private readonly buckets: Float64Array;
  private total = 0;
  private max = Number.NEGATIVE_INFINITY;
  private sum = 0;

  /** Values below minMs land in the first bucket, values at or above maxMs in the last (overflow) one. */
  constructor(
    private readonly minMs: number,
    maxMs: number,
    private readonly bucketMs: number,
  ) {
    if (!(maxMs > minMs) || !(bucketMs > 0)) throw new RangeError('LatencyHistogram: need minMs < maxMs and bucketMs > 0');
    this.buckets = new Float64Array(Math.ceil((maxMs - minMs) / bucketMs) + 1);
  }

  /** `weight` samples of the same value at once: one clock step delivers the same lateness to every sink in it. */
  record(valueMs: number, weight = 1): void {
    if (weight <= 0) return;
    const last = this.buckets.length - 1;
    let i = Math.floor((valueMs - this.minMs) / this.bucketMs);
    if (i < 0) i = 0;
    else if (i > last) i = last;
    this.buckets[i]! += weight;
    this.total += weight;
    this.sum += valueMs * weight;
    if (valueMs > this.max) this.max = valueMs;
  }

  get count(): number {
    return this.total;
  }

  /** Sum of every recorded value, ms (Prometheus histograms export it). */
  get sumMs(): number {
    return this.sum;
  }

  /**
   * Cumulative counts for Prometheus-style `le` edges (ascending, ms): for each edge, the samples in buckets that
   * end at or below it, so at bucket resolution (0.1 ms for the clock) a sample just under an edge may be counted at
   * the next one. Read at scrape time only: one pass over the buckets.
   */
  countsAtOrBelow(edgesMs: readonly number[]): number[] {
    const counts: number[] = [];
    const last = this.buckets.length - 1;
    let seen = 0;
    let i = 0;
    for (const edge of edgesMs) {
      // bucket i holds [minMs + i·bucketMs, minMs + (i+1)·bucketMs); the overflow bucket has no upper edge
      while (i < last && this.minMs + (i + 1) * this.bucketMs <= edge + 1e-9) seen += this.buckets[i++]!;
      counts.push(seen);
    }
    return counts;
  }

  /** Largest recorded value, exact (not bucketed); 0 when empty. */
  get maxValueMs(): number {
    return this.total === 0 ? 0 : this.max;
  }

  /**
   * Upper edge of the bucket holding the p-th percentile (0 < p ≤ 100), i.e. an upper bound within one bucket width;
   * the exact maximum when it falls in the overflow bucket; 0 when empty.
   */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    const last = this.buckets.length - 1;
    for (let i = 0; i < last; i++) {
      seen += this.buckets[i]!;
      // rounded: bucket edges like -2 + 17 * 0.1 would otherwise print as -0.2999999999999998
      if (seen >= rank) return Math.round((this.minMs + (i + 1) * this.bucketMs) * 1e6) / 1e6;
    }
    return this.max;
  }
}
