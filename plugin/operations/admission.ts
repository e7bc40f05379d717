import type { SipBackend } from '../sip/backend.js';

/** `/ready`'s answer: 200 take calls, 429 full (try another instance), 503 not now (draining, SIP backend down). */
export interface Readiness {
  status: 200 | 429 | 503;
  reason: string;
}

/** Why a Talkdesk upgrade is refused before it becomes a call: HTTP 503, and a kebab-case cause for the metrics. */
export interface AdmissionRefusal {
  status: 503;
  cause: 'draining' | 'max-calls' | 'sip-backend-not-ready';
  reason: string;
}

/**
 * Whether this instance takes another call, decided before the WebSocket upgrade so a refused stream costs one HTTP
 * response and never a call object. The live-call count is read at the upgrade, and the upgrade completes and
 * registers its call in the same tick (ws's handleUpgrade is synchronous without verifyClient), so two upgrades
 * cannot both take the last place.
 */
export class Admission {
  private drainingSince: number | undefined;

  constructor(
    private readonly opts: {
      maxCalls: number;
      liveCalls: () => number;
      backend: Pick<SipBackend, 'name' | 'ready'>;
    },
  ) {}

  get maxCalls(): number {
    return this.opts.maxCalls;
  }

  /** the SIP backend the calls go through, and whether it can place them now */
  get backend(): Pick<SipBackend, 'name' | 'ready'> {
    return this.opts.backend;
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** SIGTERM: from now on every upgrade is refused and /ready says 503, so load balancers take the instance out. */
  startDraining(): void {
    this.drainingSince ??= performance.now();
  }

  refusal(): AdmissionRefusal | undefined {
    const { maxCalls, liveCalls, backend } = this.opts;
    if (this.draining) return { status: 503, cause: 'draining', reason: 'gateway draining for shutdown: try another instance' };
    if (!backend.ready) {
      return { status: 503, cause: 'sip-backend-not-ready', reason: `SIP backend ${backend.name} not ready: try another instance` };
    }
    if (liveCalls() >= maxCalls) return { status: 503, cause: 'max-calls', reason: `at the call cap (MAX_CALLS ${maxCalls}): try another instance` };
    return undefined;
  }

  /** Config is loaded once this exists; then draining, the backend and the cap decide. */
  readiness(): Readiness {
    const { maxCalls, liveCalls, backend } = this.opts;
    if (this.draining) return { status: 503, reason: 'draining' };
    if (!backend.ready) return { status: 503, reason: `SIP backend ${backend.name} not ready` };
    const live = liveCalls();
    if (live >= maxCalls) return { status: 429, reason: `at the call cap: ${live} of MAX_CALLS ${maxCalls}` };
    return { status: 200, reason: `ready: ${live} of MAX_CALLS ${maxCalls}` };
  }
}
