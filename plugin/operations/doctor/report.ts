import type { Check, CheckStatus } from './check.js';

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '⚠', fail: '✗' };

/** One line per check, `✓ title: detail`, with the fix indented below a warning or failure; then a count. */
export function renderText(checks: readonly Check[]): string {
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(`${MARK[check.status]} ${check.title}${check.detail === undefined ? '' : `: ${check.detail}`}`);
    if (check.fix !== undefined) lines.push(`    fix: ${check.fix}`);
  }
  const count = (status: CheckStatus) => checks.filter((c) => c.status === status).length;
  lines.push(`${count('ok')} ✓  ${count('warn')} ⚠  ${count('fail')} ✗`);
  return `${lines.join('\n')}\n`;
}

export function renderJson(checks: readonly Check[]): string {
  return `${JSON.stringify({ ok: !checks.some((c) => c.status === 'fail'), checks }, null, 2)}\n`;
}
