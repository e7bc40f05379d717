/** The knee of a ramp: the largest step that, with every step below it, met every per-step target (issue 14). */
import { drifted } from './common.js';
import type { StepResult } from './run.js';

/** The floor ratio a step must keep (issue 14): the plugin's own work on top of the unavoidable, at most 30 %. */
export const MAX_FLOOR_RATIO = 1.3;
/**
 * The ratio is measured with the plugin and the floor side by side on core 0 (run.ts measureBeside), up to this many
 * calls each: past it the two would need more than that core (at 200 they take about three quarters of it). Steps
 * above it are judged without a ratio.
 */
export const RATIO_MAX_CALLS = 200;

/** What keeps a steady step from meeting every per-step target; empty when it meets them all. */
function missedTargets(s: StepResult): string[] {
  const w = s.window;
  const missed: string[] = [];
  if (s.start.failed > 0) missed.push(`${s.start.failed} calls failed`);
  if (w.toBot.lost > 0 || w.toTalkdesk.lost > 0) missed.push(`loss ${w.toBot.lost}/${w.toTalkdesk.lost}`);
  if (!(s.plugin.clockP99BoundMs <= 2)) missed.push(`clock p99 ≤ ${s.plugin.clockP99BoundMs} ms`);
  if (drifted(w)) missed.push(`drift ${w.driftMaxMs} ms, count off by ${w.packetCountErrorMax}`);
  if (w.toBot.latency.p95 > 20 || w.toTalkdesk.latency.p95 > 20) missed.push(`latency p95 ${w.toBot.latency.p95}/${w.toTalkdesk.latency.p95} ms`);
  if (s.playoutMaxMs > 60) missed.push(`buffer ${s.playoutMaxMs} ms`);
  if (s.ends.staleAfterByeMs.max > 60) missed.push(`stale ${s.ends.staleAfterByeMs.max} ms`);
  if (s.ends.slowEnds + s.ends.neverEnded > 0) missed.push(`${s.ends.slowEnds + s.ends.neverEnded} slow ends`);
  if (s.ratio !== undefined && s.ratio > MAX_FLOOR_RATIO) missed.push(`${s.ratio}× floor`);
  return missed;
}

/** The knee: the largest steady step that, with every step below it, met every per-step target. */
export function knee(steps: StepResult[]): { step: StepResult | undefined; next: StepResult | undefined; missed: string[] } {
  const steady = steps.filter((s) => s.sender === 'steady').sort((a, b) => a.n - b.n);
  const firstMiss = steady.findIndex((s) => missedTargets(s).length > 0);
  const held = firstMiss < 0 ? steady : steady.slice(0, firstMiss);
  const next = firstMiss < 0 ? undefined : steady[firstMiss];
  return { step: held[held.length - 1], next, missed: next ? missedTargets(next) : [] };
}

