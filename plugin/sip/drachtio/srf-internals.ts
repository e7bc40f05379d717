import type Srf from 'drachtio-srf/lib/srf.js';

/**
 * The one place we reach into drachtio-srf 5.0.29's internals. Srf has no public way to stop reconnecting while
 * no socket is connected: `disconnect()` asserts a connected socket (lib/drachtio-agent.js `_getDefaultSocket`),
 * and only WireProtocol#disconnect sets the `closing` flag its retry loop checks (lib/wire-protocol.js
 * `_onConnectionGone`). Every field is optional, so a changed srf degrades to "keeps retrying", never a throw.
 */
interface WireProtocolInternals {
  closing?: boolean;
  reconnectVars?: { retryTimer?: NodeJS.Timeout | null };
}

interface SrfInternals {
  _app?: { client?: { wp?: WireProtocolInternals } };
}

export function stopReconnecting(srf: Srf): void {
  const wp = (srf as unknown as SrfInternals)._app?.client?.wp;
  if (!wp) return;
  wp.closing = true;
  const timer = wp.reconnectVars?.retryTimer;
  if (timer) {
    clearTimeout(timer);
    wp.reconnectVars!.retryTimer = null;
  }
}
