import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { dashboardQueries, familyOf, selectorsIn, type GrafanaDashboard } from '../support/grafana.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { scrape, type Scrape } from '../support/metrics-scrape.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway } from '../support/talkdesk-call.js';

// deploy/grafana/talkdesk-gateway.json cannot drift from the code: every metric its queries read must be in a real
// /metrics scrape of a gateway that has carried a call (embedded SIP, a sipp bot in slot 18).

const DASHBOARD_FILE = 'deploy/grafana/talkdesk-gateway.json';
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as GrafanaDashboard;
const queries = dashboardQueries(dashboard);
/** labels Prometheus adds when it scrapes: never in /metrics itself */
const TARGET_LABELS = new Set(['instance', 'job']);

describe('reading PromQL', () => {
  it('takes metric names and matcher labels from selectors, never functions, grouping labels or variables', () => {
    expect(selectorsIn('histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{instance=~"$instance", x="y"}[$__rate_interval]))) / on(instance) group_left b offset 5m')).toEqual({
      selectors: [
        { metric: 'a_seconds_bucket', labels: ['instance', 'x'] },
        { metric: 'b', labels: [] },
      ],
    });
    expect(selectorsIn('sum(rate(c_total[5m])').error).toMatch(/^does not parse/);
  });

  it("resolves a histogram's series to its family by the exposition's types", () => {
    const types = new Map([['h_seconds', 'histogram'], ['s', 'summary'], ['g_count', 'gauge']]);
    expect(['h_seconds_bucket', 'h_seconds_sum', 'h_seconds_count', 's_sum', 's_bucket', 'g_count', 'g'].map((n) => familyOf(n, types))).toEqual([
      'h_seconds', 'h_seconds', 'h_seconds', 's', undefined, 'g_count', undefined,
    ]);
  });
});

describe(DASHBOARD_FILE, () => {
  it('is a Grafana dashboard on a Prometheus datasource variable, every panel and query on it', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.find((v) => v.type === 'datasource')).toMatchObject({ name: 'datasource', query: 'prometheus' });
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe('${datasource}');
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
  });

  it('lays its panels out on the 24-column grid without overlap', () => {
    const cells = new Map<string, string>();
    for (const { title, gridPos: g } of dashboard.panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.get(`${x},${y}`), `${title} overlaps`).toBeUndefined();
          cells.set(`${x},${y}`, title);
        }
      }
    }
  });

  it('every query parses as PromQL', () => {
    expect(queries.length).toBeGreaterThan(20);
    const unparsed = queries.map((q) => ({ ...q, error: selectorsIn(q.expr).error })).filter((q) => q.error !== undefined);
    expect(unparsed).toEqual([]);
  });
});

describe(`${DASHBOARD_FILE} against a real scrape`, () => {
  const bot = botPorts(18);
  let gw: Gateway;
  let after: Scrape;

  beforeAll(async () => {
    const sipp = await startSippBot({ scenario: 'uas_ok.xml', ...bot, rtpEcho: true });
    gw = await startGateway({ CCAI_SIP_PORT: String(bot.sipPort), RTP_PORT_MIN: '34200', RTP_PORT_MAX: '34298' });
    const td = await dialGateway(gw.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));
    expect((await td.waitForStop(20_000)).stop.stop).toMatchObject({ command: 'ok' });
    expectSippSuccess(await sipp.done);
    await td.closed;
    await vi.waitFor(() => expect(gw.app.registry.size).toBe(0));
    after = await scrape(gw);
    expect(after.value('talkdesk_gw_calls_total', { outcome: 'ok' })).toBe(1);
  }, 40_000);
  afterAll(() => gw?.stop());

  it('shows what the issue asks for', () => {
    const families = new Set(queries.flatMap((q) => selectorsIn(q.expr).selectors.map((s) => familyOf(s.metric, after.types) ?? s.metric)));
    for (const family of [
      'talkdesk_gw_calls_active',
      'talkdesk_gw_call_setup_seconds',
      'talkdesk_gw_calls_total',
      'talkdesk_gw_auth_failures_total',
      'talkdesk_gw_caller_speech_lost_frames_total',
      'talkdesk_gw_caller_silence_frames_total',
      'talkdesk_gw_playout_delay_seconds',
      'talkdesk_gw_media_clock_lateness_seconds',
      'talkdesk_gw_sip_backend_up',
      'talkdesk_gw_process_cpu_seconds_total',
      'talkdesk_gw_process_resident_memory_bytes',
    ]) {
      expect(families.has(family), family).toBe(true);
    }
  });

  it('reads only metrics the gateway exposes, with labels it gives them', () => {
    const problems: string[] = [];
    for (const { where, expr } of queries) {
      for (const { metric, labels } of selectorsIn(expr).selectors) {
        if (familyOf(metric, after.types) === undefined) {
          problems.push(`${where}: ${metric} is not in the scrape`);
          continue;
        }
        // a family with no series yet (a bug counter that never counted) has no labels to compare with
        const series = after.samples.filter((s) => s.name === metric);
        if (series.length === 0) continue;
        const seen = new Set(series.flatMap((s) => Object.keys(s.labels)));
        for (const label of labels) {
          if (!TARGET_LABELS.has(label) && !seen.has(label)) problems.push(`${where}: ${metric} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
