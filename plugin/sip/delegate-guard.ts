import type { Logger } from 'pino';

/**
 * Runs a callback of the call (LegDelegate) for either adapter; a throw is logged, never let into the SIP stack's
 * event loop or drachtio-srf's event handlers, where it would take other calls down with it.
 */
export function callDelegate(log: Logger, callback: string, run: () => void): void {
  try {
    run();
  } catch (err) {
    log.error({ err, callback }, 'SIP leg delegate threw');
  }
}
