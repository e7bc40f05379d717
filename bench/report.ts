/** The run's markdown table and SVG plot (hand-written SVG: CPU per call and p99 send lateness against N). */
import { knee } from './knee.js';
import type { RunResult, StepResult } from './run.js';

const fmt = (x: number | undefined, digits = 2): string => (x === undefined || Number.isNaN(x) ? '–' : String(Number(x.toFixed(digits))));

export function markdown(run: RunResult): string {
  const lines: string[] = [];
  lines.push(`# Benchmark ${run.label}`, '');
  lines.push(`${run.startedAt} · ${run.machine} · ${run.command}`, '');
  lines.push(
    '| sender | N | plugin CPU % (per call) | RSS MB | µs/pkt plugin alone; side by side, plugin / floor (ratio) | speech lost →bot / loss →TD | silence inserted / removed | clock p99 (plugin) | event-loop delay p99 / max ms | scavenges /s (mean ms) | lateness at bot p50/p99/max ms | drift ms | caller delay →bot p50/p95/max ms | latency →TD p50/p95/p99 ms | WS→RTP buffer max ms | stale after BYE max ms | BYE→stop p99 ms | loadgen CPU % (loop delay p99 ms; caller frames sent late p99 / max ms) |',
  );
  lines.push('|---|---:|---|---:|---|---|---|---|---|---|---|---:|---|---|---:|---:|---:|---:|');
  for (const s of run.steps) lines.push(row(s));
  lines.push('');
  for (const [who, steps] of [['this checkout', run.steps.filter((s) => !s.versus)], [`versus ${run.options.versus}`, run.steps.filter((s) => s.versus)]] as const) {
    if (steps.length === 0) continue;
    const k = knee(steps);
    lines.push(
      `Knee, ${who}: ` +
        (k.step ? `N=${k.step.n} at ${fmt(k.step.plugin.cpuPercent, 1)} % CPU (clock p99 ≤ ${fmt(k.step.plugin.clockP99BoundMs)} ms, event-loop delay p99 ${fmt(k.step.plugin.loop.delayP99Ms)} ms)` : 'no step met every target') +
        (k.next ? `; N=${k.next.n} (${fmt(k.next.plugin.cpuPercent, 1)} % CPU) missed ${k.missed.join('; ')}.` : '; every step met them (ramp further to find it).'),
      '',
    );
  }
  if (run.churn) {
    const c = run.churn;
    lines.push(
      `Churn: ${c.answered}/${c.requested} calls answered at ${run.options.churnRate}/s, held ${run.options.churnHoldMs} ms, ended half by the bot and half by Talkdesk in ${c.seconds} s; ` +
        `BYE→stop p99 ${fmt(c.ends.byeToStop.p99)} ms (max ${fmt(c.ends.byeToStop.max)}), stop→BYE p99 ${fmt(c.ends.stopToBye.p99)} ms (max ${fmt(c.ends.stopToBye.max)}); ` +
        `legs not ended within 1 s: ${c.ends.slowEnds + c.ends.neverEnded}.`,
      '',
    );
  }
  const mem = run.churnMemory;
  if (mem) {
    const at = mem.collected.map((c) => `${c.answered}: ${fmt(c.heapUsedMB, 1)}`).join(', ') || 'none (a churn too short)';
    lines.push(
      `Churn memory (the plugin's, idle, after a full GC): RSS ${fmt(mem.before.rssMB, 1)} → ${fmt(mem.after.rssMB, 1)} MB, V8 heap used ${fmt(mem.before.heapUsedMB, 1)} → ${fmt(mem.after.heapUsedMB, 1)} MB, ` +
        `external ${fmt(mem.before.externalMB, 1)} → ${fmt(mem.after.externalMB, 1)} MB. Along the churn, after a full GC at each fifth (calls answered: heap MB): ${at}; ` +
        `the collections stalled the plugin ${fmt(Math.max(0, ...mem.collected.map((c) => c.gcMs)), 0)} ms at most. Growth per call from the first fifth on (least-squares slopes): ` +
        `RSS after a full GC ${fmt(mem.perCall.rssAfterGc, 0)} B, heap used ${fmt(mem.perCall.heapUsedAfterGc, 0)} B, external ${fmt(mem.perCall.externalAfterGc, 0)} B; ` +
        `RSS as sampled every ${fmt(mem.rss.length > 1 ? mem.rss[1]![0] - mem.rss[0]![0] : undefined, 0)} calls ${fmt(mem.perCall.rss, 0)} B (it saws with V8's schedule of major collections).`,
      '',
    );
  }
  if (run.soak) {
    const s = run.soak;
    lines.push(
      `Soak: ${s.minutes} min at ${s.calls} calls, worst 1-minute window: loss ${s.worstLoss}, clock p99 ≤ ${s.worstClockP99Ms} ms, ` +
        `latency p95 ${fmt(s.worstLatencyP95Ms, 1)} ms, drift ${fmt(s.worstDriftMs)} ms; sender ${s.sender}: silence inserted ${s.caller.silenceInserted}, removed ${s.caller.silenceRemoved} ` +
        `in all; RSS ${s.rssStartMB} → ${s.rssEndMB} MB; BYE→stop p99 ${fmt(s.ends.byeToStop.p99, 0)} ms, legs not ended within 1 s: ${s.ends.slowEnds + s.ends.neverEnded}.`,
      '',
    );
  }
  lines.push(`Leak check (from the plugin's /metrics after every call ended): ${run.leaks.ok ? 'clean' : 'LEAKS: ' + run.leaks.problems.join('; ')}`, '');
  lines.push('| target | result | detail |', '|---|---|---|');
  for (const t of run.targets) lines.push(`| ${t.target} | **${t.result}** | ${t.detail} |`);
  lines.push('');
  return lines.join('\n');
}

function row(s: StepResult): string {
  const w = s.window;
  return [
    s.versus ? `${s.sender} (versus)` : s.sender,
    s.n,
    `${fmt(s.plugin.cpuPercent, 1)} (${fmt(s.plugin.cpuPerCallPercent, 3)})`,
    fmt(s.plugin.rssMB, 1),
    `${fmt(s.plugin.usPerPacket)}; ${fmt(s.floor?.plugin.usPerPacket)} / ${fmt(s.floor?.usPerPacket)} (${fmt(s.ratio)}×)`,
    `${w.toBot.lost} of ${w.toBot.sent} / ${w.toTalkdesk.lost}`,
    `${s.caller.silenceInserted} / ${s.caller.silenceRemoved}`,
    `≤ ${fmt(s.plugin.clockP99BoundMs)} ms (${fmt(s.plugin.clockOver2msPercent, 3)}% > 2 ms)`,
    `${fmt(s.plugin.loop.delayP99Ms)} / ${fmt(s.plugin.loop.delayMaxMs)}`,
    `${fmt(s.plugin.loop.minorGcPerSecond, 1)} (${fmt(s.plugin.loop.minorGcMeanMs)})`,
    `${fmt(w.lateness.p50)} / ${fmt(w.lateness.p99)} / ${fmt(w.lateness.max)}`,
    fmt(w.driftMaxMs),
    `${fmt(w.toBot.latency.p50, 1)} / ${fmt(w.toBot.latency.p95, 1)} / ${fmt(w.toBot.latency.max, 1)}`,
    `${fmt(w.toTalkdesk.latency.p50, 1)} / ${fmt(w.toTalkdesk.latency.p95, 1)} / ${fmt(w.toTalkdesk.latency.p99, 1)}`,
    fmt(s.playoutMaxMs, 0),
    fmt(s.ends.staleAfterByeMs.max, 1),
    fmt(s.ends.byeToStop.p99, 0),
    `${fmt(w.loadgen.cpuPercent, 0)} (${fmt(w.loadgen.loopDelayP99Ms, 1)}; ${fmt(w.loadgen.callerSendLateness?.p99, 1)} / ${fmt(w.loadgen.callerSendLateness?.max, 1)})`,
  ].join(' | ').replace(/^/, '| ').replace(/$/, ' |');
}

/** Two panels side by side: plugin CPU % per call, and p99 send lateness (plugin clock bound and at the bot), vs N, steady sender. */
export function svg(run: RunResult): string {
  const W = 860;
  const H = 340;
  const panel = (x0: number, title: string, series: Array<{ name: string; color: string; points: Array<[number, number]> }>, yLabel: string): string => {
    const pw = 360;
    const ph = 240;
    const left = x0 + 50;
    const top = 50;
    const all = series.flatMap((s) => s.points);
    const maxX = Math.max(1, ...all.map((p) => p[0]));
    const maxY = Math.max(1e-9, ...all.map((p) => p[1])) * 1.15;
    const sx = (x: number): number => left + (x / maxX) * pw;
    const sy = (y: number): number => top + ph - (y / maxY) * ph;
    const out: string[] = [];
    out.push(`<text x="${left + pw / 2}" y="30" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`);
    out.push(`<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#333"/>`);
    out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="#333"/>`);
    for (let i = 0; i <= 4; i++) {
      const y = (maxY * i) / 4;
      out.push(`<line x1="${left}" y1="${sy(y)}" x2="${left + pw}" y2="${sy(y)}" stroke="#ddd"/>`);
      out.push(`<text x="${left - 6}" y="${sy(y) + 4}" text-anchor="end" font-size="11">${fmt(y, 3)}</text>`);
    }
    for (const x of [...new Set(all.map((p) => p[0]))]) {
      out.push(`<text x="${sx(x)}" y="${top + ph + 16}" text-anchor="middle" font-size="11">${x}</text>`);
    }
    out.push(`<text x="${left + pw / 2}" y="${top + ph + 34}" text-anchor="middle" font-size="12">concurrent calls (N)</text>`);
    out.push(`<text x="${x0 + 12}" y="${top + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 + 12} ${top + ph / 2})">${yLabel}</text>`);
    series.forEach((s, i) => {
      const pts = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>`);
      for (const [x, y] of s.points) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
      out.push(`<rect x="${left + 10}" y="${top + 8 + i * 16}" width="10" height="10" fill="${s.color}"/>`);
      out.push(`<text x="${left + 26}" y="${top + 17 + i * 16}" font-size="11">${s.name}</text>`);
    });
    return out.join('\n');
  };
  const steps = run.steps.filter((s) => s.sender === 'steady' && !s.versus);
  const body = [
    panel(0, 'Plugin CPU per call', [
      { name: 'plugin, % of one core per call', color: '#1f77b4', points: steps.map((s) => [s.n, s.plugin.cpuPerCallPercent]) },
      { name: 'floor (bare Node), same N', color: '#999', points: steps.filter((s) => s.floor).map((s) => [s.n, s.floor!.cpuPerCallPercent]) },
    ], '% of one core per call'),
    panel(430, 'p99 RTP send lateness', [
      { name: 'plugin clock (upper bucket edge)', color: '#d62728', points: steps.map((s) => [s.n, s.plugin.clockP99BoundMs]) },
      { name: 'arrival at the bot vs 20 ms grid', color: '#ff7f0e', points: steps.map((s) => [s.n, s.window.lateness.p99]) },
      { name: 'event-loop delay (prom-client sampler)', color: '#2ca02c', points: steps.map((s) => [s.n, s.plugin.loop.delayP99Ms]) },
    ], 'ms'),
  ].join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}
