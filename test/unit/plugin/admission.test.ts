import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { Admission } from '../../../plugin/admission.js';
import { authenticateUpgrade } from '../../../plugin/auth.js';
import { authFailureKind } from '../../../plugin/metrics.js';

function admission(live: { n: number }, backend: { name: 'embedded' | 'drachtio'; ready: boolean } = { name: 'embedded', ready: true }, maxCalls = 2): Admission {
  return new Admission({ maxCalls, liveCalls: () => live.n, backend });
}

describe('Admission', () => {
  it('admits under the cap, refuses at it with 503 while /ready says 429', () => {
    const live = { n: 1 };
    const a = admission(live);
    expect(a.refusal()).toBeUndefined();
    expect(a.readiness()).toEqual({ status: 200, reason: 'ready: 1 of MAX_CALLS 2' });
    live.n = 2;
    expect(a.refusal()).toMatchObject({ status: 503, cause: 'max-calls' });
    expect(a.readiness()).toMatchObject({ status: 429 });
  });

  it('refuses everything and says 503 once draining, even with room', () => {
    const a = admission({ n: 0 });
    a.startDraining();
    expect(a.draining).toBe(true);
    expect(a.refusal()).toMatchObject({ status: 503, cause: 'draining' });
    expect(a.readiness()).toEqual({ status: 503, reason: 'draining' });
  });

  it('refuses and says 503 while the SIP backend is not ready', () => {
    const backend = { name: 'drachtio' as const, ready: false };
    const a = admission({ n: 0 }, backend);
    expect(a.refusal()).toMatchObject({ status: 503, cause: 'sip-backend-not-ready' });
    expect(a.readiness()).toEqual({ status: 503, reason: 'SIP backend drachtio not ready' });
    backend.ready = true;
    expect(a.readiness().status).toBe(200);
  });
});

describe('authFailureKind: the metric label of every refusal auth.ts makes', () => {
  const bot = { botId: 'st-1', clientId: 'cs-1', clientSecret: 'secret' };
  const good = { sipuri: '+1555', token: jwt.sign({ appId: 'cs-1' }, 'secret'), botId: 'st-1' };
  const cases: Array<[string, Record<string, string>, string]> = [
    ['no sipuri', { ...good, sipuri: '' }, 'missing-sipuri'],
    ['no token', { ...good, token: '' }, 'missing-token'],
    ['no botId', { ...good, botId: '' }, 'missing-botid'],
    ['bad sipuri', { ...good, sipuri: 'a b' }, 'bad-sipuri'],
    ['bad agentassist', { ...good, agentassist: 'maybe' }, 'bad-agentassist'],
    ['long sipuri', { ...good, sipuri: '1'.repeat(2048) }, 'bad-sipuri'],
    ['long accountId', { ...good, accountId: 'a'.repeat(129) }, 'bad-account-id'],
    ['unknown bot', { ...good, botId: 'st-2' }, 'unknown-bot'],
    ['huge token', { ...good, token: 'x'.repeat(5000) }, 'token-too-long'],
    ['expired', { ...good, token: jwt.sign({ appId: 'cs-1', exp: 1 }, 'secret') }, 'token-expired'],
    ['wrong secret', { ...good, token: jwt.sign({ appId: 'cs-1' }, 'other') }, 'token-invalid'],
    ['wrong appId', { ...good, token: jwt.sign({ appId: 'cs-2' }, 'secret') }, 'token-wrong-app'],
  ];
  it.each(cases)('%s → %s', (_name, query, kind) => {
    const result = authenticateUpgrade(new URLSearchParams(query), [bot]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(authFailureKind(result.reason)).toBe(kind);
  });

  it('anything else is "other", never the free text', () => {
    expect(authFailureKind('token rejected: something new')).toBe('token-invalid');
    expect(authFailureKind('a reason auth.ts does not give yet')).toBe('other');
  });
});
