import { afterEach, expect } from 'vitest';
import { startGateway, type Gateway, type LogLine } from '../support/gateway.js';

/**
 * A gateway per test, stopped after it; whatever path the test's calls took, they must have left nothing behind:
 * no call in the registry, no RTP port taken, no sink on the media clock.
 */
export function gatewayPerTest(): (env?: Record<string, string>, onLog?: (line: LogLine) => void) => Promise<Gateway> {
  let current: Gateway | undefined;
  afterEach(async () => {
    const gw = current;
    current = undefined;
    if (!gw) return;
    await gw.stop();
    expect({ calls: gw.app.registry.size, rtpPorts: gw.app.ports.inUse, clockSinks: gw.app.clock.size }).toEqual({
      calls: 0,
      rtpPorts: 0,
      clockSinks: 0,
    });
  });
  return async (env, onLog) => (current = await startGateway(env, onLog));
}
