import type { Logger } from 'pino';

/** Runs a callback of the call (LegDelegate); a throw is logged, never allowed into drachtio-srf's event handlers. */
export function callDelegate(log: Logger, callback: string, run: () => void): void {
  try {
    run();
  } catch (err) {
    log.error({ err, callback }, 'SIP leg delegate threw');
  }
}
