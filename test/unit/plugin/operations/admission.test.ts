import { describe, expect, it } from 'vitest';
import { Admission } from '../../../../plugin/operations/admission.js';

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
