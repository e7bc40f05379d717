import { parser } from '@prometheus-io/lezer-promql';

/** One PromQL query of a dashboard, and where it is (for the failure message). */
export interface DashboardQuery {
  where: string;
  expr: string;
}

/** The series a PromQL expression selects: each selector's metric name and the label names its matchers use. */
export interface Selector {
  metric: string;
  labels: string[];
}

/** The parts of a Grafana dashboard JSON the tests read. */
export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  /** a collapsed row keeps its panels inside it */
  panels?: GrafanaPanel[];
  targets?: Array<{ refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }>;
}

export interface GrafanaDashboard {
  schemaVersion: number;
  panels: GrafanaPanel[];
  templating: { list: Array<{ name: string; type: string; query?: unknown }> };
}

/**
 * Every PromQL expression of a dashboard: panel targets (a collapsed row keeps its panels inside it) and the query
 * variables' `label_values(<selector>, label)`, whose selector is PromQL.
 */
export function dashboardQueries(dashboard: GrafanaDashboard): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  const visit = (panels: GrafanaPanel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr !== undefined) queries.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
      }
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const text = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query ?? '';
    const selector = /^label_values\((.+),\s*\w+\)$/.exec(text)?.[1];
    queries.push({ where: `variable $${variable.name}`, expr: selector ?? text });
  }
  return queries;
}

/** Grafana's interval variables stand where PromQL wants a duration; the parser is given one. */
const GRAFANA_DURATIONS = /\$(?:\{__(?:rate_interval|interval|range)\}|__(?:rate_interval|interval|range)\b)/g;

/**
 * The selectors of a PromQL expression, read by Prometheus's own grammar (@prometheus-io/lezer-promql, what its UI
 * uses), so functions, aggregations, `by (…)` labels, durations and strings are never taken for metric names.
 * `error` is set when the expression does not parse: a dashboard query Prometheus would refuse.
 */
export function selectorsIn(expr: string): { selectors: Selector[]; error?: string } {
  const text = expr.replace(GRAFANA_DURATIONS, '5m');
  const selectors: Selector[] = [];
  let error: string | undefined;
  parser.parse(text).iterate({
    enter(node) {
      if (node.type.isError) {
        error ??= `does not parse at ${node.from}: …${text.slice(node.from, node.from + 30)}`;
        return false;
      }
      if (node.name !== 'VectorSelector') return undefined;
      const metric = node.node.getChild('Identifier');
      const matchers = node.node.getChild('LabelMatchers');
      selectors.push({
        metric: metric === null ? '' : text.slice(metric.from, metric.to),
        labels: (matchers?.getChildren('UnquotedLabelMatcher') ?? []).flatMap((m) => {
          const name = m.getChild('LabelName');
          return name === null ? [] : [text.slice(name.from, name.to)];
        }),
      });
      return false;
    },
  });
  return error === undefined ? { selectors } : { selectors, error };
}

/**
 * The metric family a sample name belongs to, given the exposition's `# TYPE`s: the name itself, or a histogram's
 * `_bucket`/`_sum`/`_count` (a summary's `_sum`/`_count`) series. Undefined when the exposition has no such family.
 */
export function familyOf(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name;
  const [, base, suffix] = /^(.+)_(bucket|sum|count)$/.exec(name) ?? [];
  if (base === undefined) return undefined;
  const type = types.get(base);
  if (type === 'histogram' || (type === 'summary' && suffix !== 'bucket')) return base;
  return undefined;
}
