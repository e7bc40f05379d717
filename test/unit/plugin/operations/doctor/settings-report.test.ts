import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../../config/load.js';
import { exitCode, fail, ok, warn } from '../../../../../plugin/operations/doctor/check.js';
import { renderJson, renderText } from '../../../../../plugin/operations/doctor/report.js';
import { settingsChecks } from '../../../../../plugin/operations/doctor/settings.js';
import { APP_JSON, OWN_BOTS } from './fixture.js';

describe('doctor settings checks', () => {
  it('valid settings: one ✓ naming the file', () => {
    expect(settingsChecks(loadConfig({ file: APP_JSON, env: { BOTS: OWN_BOTS } }), 'app.json')).toEqual([
      { status: 'ok', title: 'settings', detail: 'app.json and the environment: every setting is valid' },
    ]);
  });

  it('one ✗ per setting error, titled with the setting, the rest of start-up\'s message as the detail', () => {
    const loaded = loadConfig({ file: APP_JSON, env: { MAX_CALLS: '0', SIP_BACKEND: 'pjsip' } });
    expect(settingsChecks(loaded, 'app.json')).toEqual([
      { status: 'fail', title: 'SIP_BACKEND', detail: 'must be one of embedded, drachtio (got "pjsip" from environment variable SIP_BACKEND)' },
      { status: 'fail', title: 'MAX_CALLS', detail: 'must be an integer between 1 and 100000 (got "0" from environment variable MAX_CALLS)' },
    ]);
  });

  it('an error about no setting (an unreadable file) keeps its whole text', () => {
    const [check] = settingsChecks(loadConfig({ file: '/nonexistent/app.json', env: {} }), '/nonexistent/app.json');
    expect(check).toMatchObject({ status: 'fail', title: 'settings', detail: expect.stringContaining('/nonexistent/app.json') });
  });
});

describe('doctor report', () => {
  const checks = [ok('a', 'fine'), warn('b', 'hmm', 'do this'), fail('c', 'broken', 'do that'), ok('d')];

  it('text: a mark per line, the fix indented below, then the counts', () => {
    expect(renderText(checks)).toBe('✓ a: fine\n⚠ b: hmm\n    fix: do this\n✗ c: broken\n    fix: do that\n✓ d\n2 ✓  1 ⚠  1 ✗\n');
  });

  it('json: ok is false when any check failed, and the checks as they are', () => {
    expect(JSON.parse(renderJson(checks))).toEqual({ ok: false, checks });
    expect(JSON.parse(renderJson([ok('a'), warn('b', 'x')])).ok).toBe(true);
  });

  it('exit code 0 with warnings, 1 with a failure', () => {
    expect(exitCode([ok('a'), warn('b', 'x')])).toBe(0);
    expect(exitCode(checks)).toBe(1);
  });
});
