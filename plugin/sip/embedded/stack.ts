import type { Logger } from 'pino';
import { Dialog } from './dialog.js';
import { DropLog } from './drop-log.js';
import { resolveDestination, resolveUriHost } from './destination.js';
import { ALLOW } from '../backend.js';
import { NO_CCAI_SOURCES, type CcaiSources } from '../dialog-peer.js';
import { parseVia } from './header-fields.js';
import {
  InviteClientTransaction,
  NonInviteClientTransaction,
  type ClientTransaction,
  type ClientTransactionUser,
} from './client-transactions.js';
import { parseSipMessage, type IncomingMessage } from './message.js';
import { newTag } from './ids.js';
import { headerValue, serializeRequest, serializeResponse, type OutgoingRequest } from './message-builder.js';
import { InviteServerTransaction, NonInviteServerTransaction, type ServerTransaction } from './server-transactions.js';
import { PerSourceInterval } from './source-rate.js';
import type { SipTimers } from './timers.js';
import type { Target, TargetResolver } from './target-resolver.js';
import { transactionKey, type TransactionContext } from './transaction.js';
import type { Destination, SipTransport, TransportUser } from './transport.js';

/** an out-of-dialog INVITE's source gets at most one 403 this often (refuseInvite) */
const REFUSAL_INTERVAL_MS = 1_000;

/** Methods we accept (Allow, §20.5) */

/** The UA-core side of a confirmed dialog: the leg. */
export interface DialogUser {
  readonly dialog: Dialog;
  /** a new request in the dialog (not ACK), with its server transaction to answer on */
  receiveRequest(request: IncomingMessage, txn: ServerTransaction): void;
  /** an ACK with a new branch: the ACK for a 2xx we sent to a re-INVITE (§13.3.1.4) */
  receiveAck(ack: IncomingMessage): void;
  /** where the dialog's requests go, once looked up: a stream transport keeps its connection open meanwhile */
  readonly peer: Destination | undefined;
  /** the stack stops: clear every timer of the dialog (RFC 4028 refresh/expiry) and send nothing more */
  dispose(): void;
}

export interface SipStackOptions {
  transport: SipTransport;
  timers: SipTimers;
  log: Logger;
  advertisedAddress: string;
  userAgent: string;
  /** how long one second of Session-Expires lasts: 1000, shorter in tests */
  sessionSecondMs?: number;
  /** CCAI_SOURCE_ADDRESSES: who may act in any dialog besides its own peer hosts (../dialog-peer.ts) */
  ccaiSources?: CcaiSources;
  /** where an INVITE's request-URI leads (RFC 3263) */
  targets: TargetResolver;
  /** CCAI_TARGET_TIMEOUT_MS: how long a target may stay silent before the INVITE goes to the next */
  targetTimeoutMs: number;
}

/**
 * The transaction layer and dialog table of one transport (RFC 3261 §17, §12): creates client transactions,
 * matches every received message to a transaction or dialog, answers what no dialog claims. `receive` is the edge:
 * nothing a peer sends can make it throw.
 */
export class SipStack implements TransportUser {
  private readonly clientTransactions = new Map<string, ClientTransaction>();
  private readonly serverTransactions = new Map<string, ServerTransaction>();
  private readonly dialogs = new Map<string, DialogUser>();
  private readonly malformed: DropLog;
  private readonly stray: DropLog;
  /** SIP scanners probe with INVITEs: refusing them is logged at the drop rate too */
  private readonly refused: DropLog;
  private readonly inviteRefusals = new PerSourceInterval(REFUSAL_INTERVAL_MS);
  private disposed = false;

  constructor(private readonly opts: SipStackOptions) {
    this.malformed = new DropLog(opts.log, 'malformed SIP message dropped');
    this.stray = new DropLog(opts.log, 'SIP message for no transaction or dialog dropped');
    this.refused = new DropLog(opts.log, 'incoming INVITE refused: the embedded SIP backend only places calls');
  }

  get timers(): SipTimers {
    return this.opts.timers;
  }

  get userAgent(): string {
    return this.opts.userAgent;
  }

  get sessionSecondMs(): number {
    return this.opts.sessionSecondMs ?? 1000;
  }

  get counts(): { transactions: number; dialogs: number } {
    return { transactions: this.clientTransactions.size + this.serverTransactions.size, dialogs: this.dialogs.size };
  }

  private get sentBy(): string {
    return `${this.opts.advertisedAddress}:${this.opts.transport.localPort}`;
  }

  /** our Via (§18.1.1) with rport (RFC 3581) so responses come back to the port we send from */
  via(branch: string): string {
    return `SIP/2.0/${this.opts.transport.protocol} ${this.sentBy};branch=${branch};rport`;
  }

  localUri(user: string): string {
    return `sip:${user}@${this.sentBy}`;
  }

  /** §8.1.1.8: a sips request-URI needs a sips Contact; `;transport=` says where a new connection to us goes */
  contact(user: string, scheme: 'sip' | 'sips'): string {
    return `<${scheme}:${user}@${this.sentBy};transport=${this.opts.transport.protocol.toLowerCase()}>`;
  }

  /** the next hop of an in-dialog request: its remote target or first Route, as the dialog gave it */
  resolve(uri: string): Promise<Destination> {
    return resolveDestination(uri, this.opts.transport);
  }

  /** where an INVITE's request-URI leads, in the order to try (RFC 3263 §4) */
  resolveTargets(uri: string): Promise<Target[]> {
    return this.opts.targets.targets(uri, this.opts.transport);
  }

  get targetTimeoutMs(): number {
    return this.opts.targetTimeoutMs;
  }

  /** the address of a URI's host, looked up as resolve() does (a dialog's Contact and Record-Route hosts) */
  resolveHost(uri: string): Promise<string> {
    return resolveUriHost(uri, this.opts.transport.family);
  }

  get ccaiSources(): CcaiSources {
    return this.opts.ccaiSources ?? NO_CCAI_SOURCES;
  }

  startInvite(invite: OutgoingRequest, destination: Destination, log: Logger, user: ClientTransactionUser): InviteClientTransaction {
    const key = clientKey(invite);
    return this.startClient(new InviteClientTransaction(key, invite, this.context(destination, log, this.clientTransactions), user));
  }

  startRequest(request: OutgoingRequest, destination: Destination, log: Logger, user: ClientTransactionUser): void {
    const key = clientKey(request);
    this.startClient(new NonInviteClientTransaction(key, request, this.context(destination, log, this.clientTransactions), user));
  }

  /** After stop() (e.g. a DNS lookup that finished late) a new transaction fails at once as `unavailable`. */
  private startClient<T extends ClientTransaction>(txn: T): T {
    if (this.disposed) {
      txn.dispose();
      return txn;
    }
    this.clientTransactions.set(txn.key, txn);
    txn.start();
    return txn;
  }

  /** ACK for a 2xx: its own transaction-less request (§13.2.2.4, §17.1.1.3). Resolves false on a send error. */
  async sendStateless(request: OutgoingRequest, destination: Destination, log: Logger): Promise<boolean> {
    try {
      await this.opts.transport.send(serializeRequest(request), destination);
      return true;
    } catch (err) {
      log.warn({ err, method: request.method }, 'SIP request could not be sent');
      return false;
    }
  }

  addDialog(user: DialogUser): void {
    this.dialogs.set(user.dialog.id, user);
  }

  removeDialog(user: DialogUser): void {
    if (this.dialogs.get(user.dialog.id) === user) this.dialogs.delete(user.dialog.id);
  }

  connectionLost(peer: Destination, error: Error): void {
    // Only requests still waiting for their final response can fail; the rest finish on their own (zero) timers.
    // A peer closing a connection nothing waits on is ordinary: a bot done with its calls.
    const waiting = [...this.clientTransactions.values()].filter(
      (txn) => txn.awaitsFinalResponse && sameDestination(txn.destination, peer),
    );
    const details = { peer: `${peer.host}:${peer.port}`, reason: error.message, transactions: waiting.length };
    if (waiting.length > 0) this.opts.log.warn(details, 'SIP connection lost');
    else this.opts.log.debug(details, 'SIP connection closed by the peer');
    for (const txn of waiting) txn.connectionLost(error);
  }

  uses(peer: Destination): boolean {
    const sends = (to: Destination | undefined): boolean => to !== undefined && sameDestination(to, peer);
    for (const txn of this.clientTransactions.values()) if (sends(txn.destination)) return true;
    for (const txn of this.serverTransactions.values()) if (sends(txn.destination)) return true;
    for (const dialog of this.dialogs.values()) if (sends(dialog.peer)) return true;
    return false;
  }

  /** Clears every transaction timer and forgets every dialog (backend stop). */
  dispose(): void {
    this.disposed = true;
    for (const txn of [...this.clientTransactions.values(), ...this.serverTransactions.values()]) txn.dispose();
    for (const dialog of this.dialogs.values()) dialog.dispose();
    this.dialogs.clear();
  }

  receive(data: Buffer, source: Destination): void {
    const parsed = parseSipMessage(data);
    if (!parsed.ok) {
      this.malformed.note(parsed.reason, { source: `${source.host}:${source.port}`, bytes: data.length });
      return;
    }
    // the source travels with the message: a dialog obeys only its peer, and learns it from the 2xx's source too
    const message: IncomingMessage = { ...parsed.message, source };
    try {
      if (message.sip.type === 'response') this.receiveResponse(message);
      else this.receiveRequest(message, source);
    } catch (err) {
      this.opts.log.error({ err, callId: parsed.message.callId }, 'SIP message handling failed');
    }
  }

  private context<T>(destination: Destination, log: Logger, table: Map<string, T>): TransactionContext {
    return {
      transport: this.opts.transport,
      timers: this.opts.timers,
      log,
      destination,
      onTerminated: (key) => table.delete(key),
    };
  }

  /** §17.1.3: a response belongs to the client transaction with its top Via branch and CSeq method. */
  private receiveResponse(response: IncomingMessage): void {
    const txn = this.clientTransactions.get(transactionKey(response.branch, response.cseq.method));
    if (txn) txn.receiveResponse(response);
    else this.stray.note('response matches no transaction', { callId: response.callId, status: response.sip.status });
  }

  /** §17.2.3 matching, then §12.2.2 dialog matching, then §8.2 for what is outside any dialog. */
  private receiveRequest(request: IncomingMessage, source: Destination): void {
    const method = request.sip.method!;
    const key = transactionKey(request.branch, method);
    if (method === 'ACK') {
      this.receiveAck(request, key);
      return;
    }
    const existing = this.serverTransactions.get(key);
    if (existing) {
      existing.receiveRetransmission();
      return;
    }
    if (method === 'INVITE' && (request.toTag === undefined || !this.dialogs.has(dialogIdOf(request)))) {
      this.refuseInvite(request, source);
      return;
    }
    const destination = this.opts.transport.reliable ? source : responseDestination(request, source);
    const ctx = this.context(destination, this.opts.log, this.serverTransactions);
    const txn =
      method === 'INVITE' ? new InviteServerTransaction(key, request, ctx) : new NonInviteServerTransaction(key, request, ctx);
    this.serverTransactions.set(key, txn);

    try {
      this.dispatchRequest(request, txn);
    } finally {
      // a throwing handler must not leave the transaction unanswered (it would never terminate)
      if (!txn.answered) txn.respond({ status: 500, reason: 'Server Internal Error' });
    }
  }

  private dispatchRequest(request: IncomingMessage, txn: ServerTransaction): void {
    if (request.sip.method === 'CANCEL') {
      // §9.2: every INVITE we serve was answered at once, so a matching CANCEL has nothing left to cancel
      const cancelled = this.serverTransactions.has(transactionKey(request.branch, 'INVITE'));
      txn.respond(cancelled ? { status: 200, reason: 'OK' } : { status: 481, reason: 'Call/Transaction Does Not Exist' });
      return;
    }
    const dialog = request.toTag === undefined ? undefined : this.dialogs.get(dialogIdOf(request));
    if (dialog) dialog.receiveRequest(request, txn);
    else this.answerOutsideDialog(request, txn);
  }

  private receiveAck(ack: IncomingMessage, key: string): void {
    const txn = this.serverTransactions.get(key);
    if (txn instanceof InviteServerTransaction) {
      txn.receiveAck(); // ACK for a non-2xx: same branch as its INVITE (§17.1.1.3)
      return;
    }
    const dialog = this.dialogs.get(dialogIdOf(ack));
    if (dialog) dialog.receiveAck(ack);
    else this.stray.note('ACK matches no transaction or dialog', { callId: ack.callId });
  }

  /**
   * An INVITE outside any dialog: this backend only places calls, so one with no To tag gets 403 and one naming a
   * dialog we do not have 481 (§12.2.2). Either is sent once, statelessly (§8.2.7, §16.11 for the stateless model),
   * at most once per REFUSAL_INTERVAL_MS per source: a stateful answer would be re-sent on Timer G until an ACK that a
   * spoofed victim never sends (11 responses over Timer H's 32 s for one datagram), and one answer per INVITE would
   * still reflect a flood. A retransmitted INVITE is answered again only after the interval; the ACK for our answer
   * then matches nothing and is dropped.
   */
  private refuseInvite(request: IncomingMessage, source: Destination): void {
    const from = `${source.host}:${source.port}`;
    if (!this.inviteRefusals.take(source.host)) {
      this.refused.note('dropped: this source was answered within the last second', { callId: request.callId, source: from });
      return;
    }
    const answer = request.toTag === undefined ? { status: 403, reason: 'Forbidden (UAC only)' } : { status: 481, reason: 'Call/Transaction Does Not Exist' };
    this.refused.note(String(answer.status), { callId: request.callId, source: from });
    const destination = this.opts.transport.reliable ? source : responseDestination(request, source);
    const wire = serializeResponse(request, answer, newTag());
    this.opts.transport.send(wire, destination).catch((err: Error) =>
      this.opts.log.debug({ err: err.message, source: from }, `${answer.status} could not be sent`),
    );
  }

  /**
   * A request no dialog of ours claims. With a To tag it names a dialog we do not have: 481 (§12.2.2). Without one
   * it would start something new: OPTIONS gets 200 (§11.2, keep-alive probes) and anything else 481 (§15.1.2 for
   * BYE); an INVITE never gets here (refuseInvite).
   */
  private answerOutsideDialog(request: IncomingMessage, txn: ServerTransaction): void {
    const method = request.sip.method!;
    if (request.toTag === undefined && method === 'OPTIONS') {
      txn.respond({ status: 200, reason: 'OK', headers: [['Allow', ALLOW], ['Accept', 'application/sdp']] });
    } else {
      this.stray.note('request for an unknown dialog', { callId: request.callId, method });
      txn.respond({ status: 481, reason: 'Call/Transaction Does Not Exist' });
    }
  }
}

function clientKey(request: OutgoingRequest): string {
  const branch = parseVia(headerValue(request, 'Via')!)?.params.branch;
  if (!branch) throw new Error(`${request.method} built without a Via branch`);
  return transactionKey(branch, request.method);
}

/** the dialog an incoming request names: its To tag is our tag, its From tag the peer's (§12.2.2) */
function dialogIdOf(request: IncomingMessage): string {
  return Dialog.idOf(request.callId, request.toTag ?? '', request.fromTag ?? '');
}

function sameDestination(a: Destination, b: Destination): boolean {
  return a.host === b.host && a.port === b.port;
}

/**
 * §18.2.2 for unreliable transports: responses go to the address the request came from (`received`), and with
 * `rport` (RFC 3581 §4) to its source port too; otherwise to the Via port. Deviation: maddr is ignored.
 * Reliable transports answer over the connection the request came on: the source is that connection's peer.
 * Deviation: when that connection is gone we try a new one to its address, not to the Via sent-by port; for a
 * connection the peer opened (from an ephemeral port) that fails and the response is lost, logged.
 */
function responseDestination(request: IncomingMessage, source: Destination): Destination {
  const port = 'rport' in request.via.params ? source.port : (request.via.port ?? 5060);
  return { host: source.host, port };
}
