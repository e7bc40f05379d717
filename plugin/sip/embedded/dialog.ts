import { splitHeaderList } from '../header-list.js';
import { parseNameAddr } from './header-fields.js';
import type { IncomingMessage } from './message.js';
import { headerValue, type Header, type OutgoingRequest } from './message-builder.js';
import { parseSipUri } from './uri.js';

/**
 * The state of one confirmed dialog on the UAC side (RFC 3261 §12): identifiers, sequence numbers, remote target
 * and route set, and how to build requests inside it (§12.2.1.1). Pure data: no I/O, no timers.
 */
export class Dialog {
  private localSeq: number;
  private remoteSeq: number | undefined;

  private constructor(
    readonly callId: string,
    readonly localTag: string,
    readonly remoteTag: string,
    /** our From header value, tag included */
    private readonly localParty: string,
    /** the peer's To header value from the 2xx, tag included */
    private readonly remoteParty: string,
    /** URI from the peer's latest Contact (§12.1.2, refreshed by §12.2.2 target-refresh requests) */
    private remoteTarget: string,
    /** Record-Route of the 2xx, reversed (§12.1.2); raw name-addrs */
    private readonly routeSet: readonly string[],
    localSeq: number,
  ) {
    this.localSeq = localSeq;
  }

  /**
   * §12.1.2: the dialog a 2xx to our INVITE creates. A 2xx without Contact breaks §13.3.1.4; we then aim in-dialog
   * requests at the INVITE's request-URI rather than refusing a call the peer considers up.
   */
  static fromAnswer(invite: OutgoingRequest, answer: IncomingMessage): Dialog {
    const contact = answer.sip.get('contact');
    const contactUri = contact === undefined ? undefined : parseNameAddr(splitHeaderList(contact)[0] ?? '')?.uri;
    const recordRoute = answer.sip.get('record-route');
    return new Dialog(
      answer.callId,
      answer.fromTag ?? '',
      answer.toTag ?? '',
      headerValue(invite, 'From')!,
      answer.sip.get('to')!,
      contactUri ?? invite.uri,
      recordRoute === undefined ? [] : splitHeaderList(recordRoute).reverse(),
      answer.cseq.seq,
    );
  }

  /** dialog id as matched on incoming requests: their To tag is our local tag (§12.2.2) */
  static idOf(callId: string, localTag: string, remoteTag: string): string {
    return `${callId};${localTag};${remoteTag}`;
  }

  get id(): string {
    return Dialog.idOf(this.callId, this.localTag, this.remoteTag);
  }

  /** the URI of the next hop: the first route when there is a route set, the remote target otherwise (§8.1.2) */
  get nextHopUri(): string {
    const firstRoute = this.routeSet[0];
    return firstRoute === undefined ? this.remoteTarget : (parseNameAddr(firstRoute)?.uri ?? this.remoteTarget);
  }

  /** the URIs of the remote target and of every route: their hosts are the dialog's peer (../dialog-peer.ts) */
  get peerUris(): string[] {
    const routes = this.routeSet.map((route) => parseNameAddr(route)?.uri).filter((uri) => uri !== undefined);
    return [this.remoteTarget, ...routes];
  }

  /** the next local CSeq number for a new request (§12.2.1.1) */
  nextSeq(): number {
    return ++this.localSeq;
  }

  /**
   * §12.2.2: a request with a lower CSeq than the last one is out of order (answer 500). ACK and CANCEL reuse
   * their INVITE's number and are not checked.
   */
  acceptRemoteSeq(request: IncomingMessage): boolean {
    const { seq, method } = request.cseq;
    if (method === 'ACK' || method === 'CANCEL') return true;
    if (this.remoteSeq !== undefined && seq < this.remoteSeq) return false;
    this.remoteSeq = seq;
    return true;
  }

  /** §12.2.2: re-INVITE and UPDATE replace the remote target with their Contact. */
  refreshTarget(request: IncomingMessage): void {
    const contact = request.sip.get('contact');
    const uri = contact === undefined ? undefined : parseNameAddr(splitHeaderList(contact)[0] ?? '')?.uri;
    if (uri) this.remoteTarget = uri;
  }

  /**
   * §12.2.1.1: a request within the dialog. With a loose-routing first hop (`;lr`) the request-URI is the remote
   * target and Route is the route set; a strict router (no `;lr`) takes the request-URI itself and the remote
   * target goes last in Route.
   */
  createRequest(method: string, opts: { via: string; seq: number; headers?: readonly Header[]; body?: string }): OutgoingRequest {
    const [first, ...rest] = this.routeSet;
    const firstUri = first === undefined ? undefined : parseNameAddr(first)?.uri;
    const strict = firstUri !== undefined && !('lr' in (parseSipUri(firstUri)?.params ?? {}));
    const uri = strict ? firstUri : this.remoteTarget;
    const route = strict ? [...rest, `<${this.remoteTarget}>`] : this.routeSet;
    return {
      method,
      uri,
      headers: [
        ['Via', opts.via],
        ['Max-Forwards', '70'],
        ['From', this.localParty],
        ['To', this.remoteParty],
        ['Call-ID', this.callId],
        ['CSeq', `${opts.seq} ${method}`],
        ...route.map((r): Header => ['Route', r]),
        ...(opts.headers ?? []),
      ],
      body: opts.body ?? '',
    };
  }
}
