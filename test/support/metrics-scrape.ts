import { expect } from 'vitest';
import type { Gateway } from './gateway.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  text: string;
  /** every sample line, as exposed (a histogram's `_bucket`, `_sum`, `_count` under those names) */
  samples: readonly Sample[];
  /** each family's `# TYPE`: counter, gauge, histogram… (a family without samples is declared all the same) */
  types: ReadonlyMap<string, string>;
  /** sums the samples whose labels include those given (0 when none) */
  value(name: string, labels?: Record<string, string>): number;
}

/** GET /metrics, parsed. */
export async function scrape(gw: Gateway): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${gw.app.metricsPort}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\w+) (\w+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    text,
    samples,
    types,
    value: (name, labels = {}) =>
      samples
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0),
  };
}
