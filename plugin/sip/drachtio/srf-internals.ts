import type Srf from 'drachtio-srf/lib/srf.js';

/**
 * The places we reach into drachtio-srf 5.0.29's internals. Srf has no public way to stop reconnecting while
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

interface DialogInternals {
  srf?: { removeDialog?(dialog: Srf.Dialog): void };
}

/**
 * A BYE sent with dlg.request (the leg's hangup, which needs the answer) leaves srf's dialog table on its answer
 * (lib/dialog.js `request`), but stays there when drachtio-server refuses to send it; dlg.destroy() would have removed
 * it either way. This removes it, so a refused BYE does not keep the dialog, and the leg it points to, for ever.
 */
export function forgetDialog(dlg: Srf.Dialog): void {
  (dlg as unknown as DialogInternals).srf?.removeDialog?.(dlg);
}

interface AppInternals {
  stack?: Array<{ method: string; handle: (req: Srf.Request, res: Srf.ServerResponse, next: () => void) => void }>;
}

/**
 * Puts a middleware before srf's own dialog handler, which its constructor installs first (lib/srf.js `dialog()`,
 * lib/proto.js `use` only appends). Without the stack, srf changed: it throws, so start() fails rather than running
 * without the check.
 */
export function useFirst(srf: Srf, handle: (req: Srf.Request, res: Srf.ServerResponse, next: () => void) => void): void {
  const stack = ((srf as unknown as { app?: AppInternals }).app)?.stack;
  if (!Array.isArray(stack)) throw new Error('drachtio-srf has no middleware stack where 5.0.29 had one: cannot check in-dialog sources');
  stack.unshift({ method: '*', handle });
}
