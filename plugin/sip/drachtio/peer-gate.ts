import type Srf from 'drachtio-srf/lib/srf.js';
import type { Logger } from 'pino';
import { FOREIGN_SOURCE_RESPONSE, type DialogPeer } from '../dialog-peer.js';
import { DropLog } from '../embedded/drop-log.js';

interface Guarded {
  peer: DialogPeer;
  /** a stranger's requests, logged at most once per 10 s per call */
  strangers: DropLog;
}

/**
 * Only a dialog's peer acts in it (../dialog-peer.ts, the rule the embedded backend follows too). It runs as the first
 * srf middleware (srf-internals.ts `useFirst`), before srf's own dialog handling: srf answers a BYE 200 and drops the
 * dialog before any listener of ours runs (lib/dialog.js `handle`). drachtio-server relays each request's source
 * address (`req.source_address`: the connection's peer on TCP/TLS). A request from anyone else gets 403 and reaches
 * neither srf's dialog nor the call; an ACK from anyone else is dropped. drachtio-server's own requests (its BYE on
 * session expiry) come from 'application' and pass. A dialog this gate does not hold is not ours to judge.
 */
export class PeerGate {
  private readonly dialogs = new Map<string, Guarded>();

  /** Guards `dialogId` until the returned release is called (the dialog is over). */
  guard(dialogId: string, peer: DialogPeer, log: Logger): () => void {
    const guarded = { peer, strangers: new DropLog(log, 'in-dialog request from a source that is not the dialog\'s peer refused') };
    this.dialogs.set(dialogId, guarded);
    return () => {
      if (this.dialogs.get(dialogId) === guarded) this.dialogs.delete(dialogId);
    };
  }

  readonly middleware = (req: Srf.Request, res: Srf.ServerResponse, next: () => void): void => {
    const guarded = this.dialogs.get(req.stackDialogId);
    if (!guarded || req.source !== 'network' || guarded.peer.entitles(req.source_address)) {
      next();
      return;
    }
    const ack = req.method === 'ACK';
    guarded.strangers.note(ack ? 'ACK dropped' : '403', {
      method: req.method,
      source: `${req.source_address}:${req.source_port}`,
      peer: guarded.peer.addresses,
    });
    // an ACK has no response (RFC 3261 §17.1.1.3)
    if (!ack) res.send(FOREIGN_SOURCE_RESPONSE.status, FOREIGN_SOURCE_RESPONSE.reason);
  };
}
