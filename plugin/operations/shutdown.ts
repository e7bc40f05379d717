import type { Logger } from 'pino';
import type { RunningApp } from '../app.js';

/** SIGINT is a developer's Ctrl-C: the same drain, with a grace short enough to wait for. */
export const SIGINT_GRACE_MS = 2_000;
/**
 * After a second signal, how long the calls get to send their stop and BYE before the process exits whether their
 * BYEs were answered or not: a bot that is gone would otherwise hold the exit for its BYE's 32 s timeout.
 */
export const FORCED_EXIT_MS = 3_000;

export interface ShutdownOptions {
  /** SHUTDOWN_GRACE_MS: how long live calls get to finish after SIGTERM */
  graceMs: number;
  log: Logger;
  /** process.exit in main.ts */
  exit(code: number): void;
}

/**
 * SIGTERM/SIGINT → drain: no new calls (upgrades and /ready 503), live calls finish within the grace period (SIGINT:
 * at most SIGINT_GRACE_MS), the rest end cleanly with stop{error} + BYE, then exit 0. A second signal while draining
 * ends the rest at once (an operator's second Ctrl-C, or an orchestrator that will not wait), and exits within
 * FORCED_EXIT_MS even if BYEs go unanswered.
 */
export function exitOnShutdownSignals(
  signals: { on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown },
  app: Pick<RunningApp, 'drain' | 'registry'>,
  opts: ShutdownOptions,
): void {
  const { log } = opts;
  let draining = false;
  const onSignal = (signal: 'SIGTERM' | 'SIGINT'): void => {
    if (draining) {
      log.warn({ signal, liveCalls: app.registry.size }, 'second signal while draining: ending live calls now');
      void app.drain(0);
      setTimeout(() => {
        log.warn({ liveCalls: app.registry.size, afterMs: FORCED_EXIT_MS }, 'exiting with BYEs unanswered: stop and BYE were sent');
        opts.exit(0);
      }, FORCED_EXIT_MS).unref();
      return;
    }
    draining = true;
    const graceMs = signal === 'SIGINT' ? Math.min(opts.graceMs, SIGINT_GRACE_MS) : opts.graceMs;
    log.info({ signal, liveCalls: app.registry.size, graceMs }, 'shutting down: no new calls, live calls get the grace period');
    app.drain(graceMs).then(
      () => {
        log.info({ signal }, 'shut down cleanly');
        opts.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        opts.exit(1);
      },
    );
  };
  // on, not once: a second signal must reach us, not Node's default (which would kill the process mid-drain)
  signals.on('SIGTERM', () => onSignal('SIGTERM'));
  signals.on('SIGINT', () => onSignal('SIGINT'));
}
