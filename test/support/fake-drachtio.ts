import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import SipMessage from 'drachtio-srf/lib/sip-parser/message.js';

/**
 * A scripted drachtio-server for tests: its control protocol on a loopback TCP port, with a scriptable SIP far end
 * (the "bot", listening on 127.0.0.1:5070 for every transport) behind it, so the unmodified drachtio-srf drives it as
 * it drives the real server. What it does was measured against a real drachtio-server v0.9.10 (1,546 frames on its
 * admin socket, issue 13); plugin/sip/drachtio/README.md lists what it reproduces and what it does not.
 *
 * The protocol (drachtio-server src/client.cpp, src/sip-dialog-controller.cpp, src/drachtio.cpp SipMsgData_t;
 * drachtio-srf lib/wire-protocol.js, lib/drachtio-agent.js; sip-notes §1.6–1.8): every frame is
 * `<byte length>#<text>`, the text `<msgId>|<type>|<tokens…>`, a SIP message after the first CRLF. `<meta>` is
 * `<source>|<len>|<proto>|<addr>|<port>|<time>`: for what arrived from the network, the real source address and port
 * (ephemeral on a new TCP/TLS connection); for what was sent, drachtio's own transport; empty where it knows none.
 *
 *   app → server                                   server → app
 *   authenticate|<secret>|<tags>                   response|<msgId>|OK|<hostports>|<version>|<localHostports>
 *                                                  response|<msgId>|NO|incorrect secret   (then close)
 *   route|<verb>, remove_route|<verb>, ping        response|<msgId>|OK[|pong]
 *   sip|<txnId>|<dialogId>[|<route>]\r\n<SIP>      a new request:       response|<msgId>|OK|<meta>|<txnId>|Msg sent:|\r\n<SIP as sent>
 *                                                  an in-dialog request: response|<msgId>|OK|<meta>|<txnId>|Msg sent:|\r\n<SIP as sent>
 *                                                  an answer to the bot: response|<msgId>|OK|<meta>|<txnId>|<dialogId>||Msg sent:|\r\n<SIP>
 *                                                  response|<msgId>|NOK|<reason>   (refused: no dialog, no transport …)
 *                                                  sip|<meta>|<txnId>|<dialogId>|\r\n<SIP>   (from the network)
 *                                                  sip|network|0|<proto>||0|<time>|<txnId>|<dialogId>|\r\n<503>  (transport failure)
 *                                                  sip|application|…|unsolicited|<dialogId>|\r\n<BYE as sent to the bot>
 *
 * What the real server does and this fake does too: it completes the app's requests (Via, tags, Call-ID, CSeq from a
 * random start, `@localhost` → the chosen transport's address with any parameters kept, Contact, Content-Type for
 * SDP, Content-Length) and echoes them; it picks the transport from the request-URI's `;transport=` and refuses one
 * it has not bound; it sends the ACK and every later request of a dialog to the bot's Contact from the 2xx; a TCP/TLS
 * request to where nothing listens comes back as a 503 it made itself; it ACKs non-2xx answers itself and refuses
 * the app's ACK for them; it does not pass up the 200 to a CANCEL; it forgets a dialog once a BYE is answered,
 * refuses the app's in-dialog requests for it ("unable to find dialog") and answers the bot's with 481 itself. A
 * request of the bot reaches it only where it listens: on the connection it opened, or on a new one to our Contact
 * as RFC 3263 resolves it (no `;transport=` on a sip: URI means UDP); one whose Via transport is not the
 * connection's is dropped. Its own BYE (session-timer expiry) goes to the bot and, as sent, to the app. A 1xx reaches
 * the app whole, as the bot sent it, under the INVITE's transaction id, which srf hands to createUAC's cbProvisional.
 *
 * What it does not reproduce: the CSeq the app asks for on an INVITE sent again after a 401/407 (srf's digest client
 * writes the first one's + 1; this fake starts a new random one, as for any INVITE: proxies check the digest, not
 * that), running RFC 4028 session timers (a test calls serverGeneratedBye), reliable
 * provisionals (RFC 3262: srf would PRACK a 1xx with RSeq; nothing answers it), retransmissions and Timer B/F (the
 * real server's stack absorbs or times them out), multipart bodies, drachtio-server's own 100 Trying, and the exact
 * address fields of "Msg sent" replies (srf does not read them).
 */

export interface FakeDrachtioOptions {
  secret?: string;
  /** the SIP transports announced on authentication, tls first as drachtio-server lists them */
  hostports?: string;
  version?: string;
}

/** What the bot received from drachtio-server: the SIP message as it would be on the wire. */
export interface BotReceived {
  readonly sip: SipMessage;
  readonly raw: string;
  readonly label: string;
  readonly txnId: string;
  readonly dialogId: string;
}

/** How the bot sends a request inside its dialog. */
export interface BotRequestOptions {
  headers?: Record<string, string>;
  body?: string;
  /**
   * `reuse` (default): on the connection drachtio-server opened for the INVITE (on UDP, from the bot's port 5070).
   * `new`: to our Contact as RFC 3263 §4.1 resolves it (its `;transport=`, tls for sips:, else udp; its port), from an
   * ephemeral port on TCP/TLS. Where drachtio-server does not listen, the request is lost.
   */
  connection?: 'reuse' | 'new';
  /** the transport the bot writes in its Via; drachtio-server drops the request when it is not the connection's */
  viaTransport?: string;
  /** where the request comes from: another host on the path instead of the bot (127.0.0.1) */
  sourceAddress?: string;
  /** a CSeq number of its own choosing (a stranger's); the bot's next one is unchanged */
  cseq?: number;
}

/** one end of a SIP hop: a transport, an address and a port */
interface Hop {
  proto: string;
  address: string;
  port: string;
}

interface Transaction {
  /** the request as the bot received it (uac, server) or sent it (uas) */
  request: SipMessage;
  /** uac: the app sent it; uas: the bot sent it to the app; server: drachtio-server's own (its BYE) */
  side: 'uac' | 'uas' | 'server';
  dialogId: string;
  socket: Socket;
  final: boolean;
  /** the bot's end of the connection the request travelled on: its answers come from there */
  hop: Hop;
}

interface Dialog {
  id: string;
  socket: Socket;
  callId: string;
  /** the app's From (with its tag) and the bot's To (with the bot's tag, once answered) */
  appFrom: string;
  botTo: string;
  appContactUri: string;
  /** the remote target: the Contact of the bot's 2xx */
  botContactUri: string;
  inviteSeq: number;
  appSeq: number;
  botSeq: number;
  state: 'calling' | 'confirmed' | 'failed';
  /** drachtio-server's transport the INVITE went out on */
  transport: Listener;
}

/** a transport drachtio-server has bound, from its hostports */
interface Listener {
  proto: string;
  host: string;
  port: string;
}

const CRLF = '\r\n';
export const FAKE_DRACHTIO_SECRET = 'cymru';
/** where the bot listens, on every transport */
export const BOT_ADDRESS = '127.0.0.1';
export const BOT_PORT = '5070';

export class FakeDrachtio {
  readonly secret: string;
  hostports: string;
  readonly version: string;
  readonly received: BotReceived[] = [];
  /** every control message the app sent, for assertions */
  readonly fromApp: string[] = [];
  /** requests that never arrived, and why: the bot's to where drachtio-server does not listen, drachtio's over UDP to where the bot does not */
  readonly lost: Array<{ method: string; why: string }> = [];
  private readonly consumed = new Set<BotReceived>();
  private waiters: Array<() => void> = [];
  private readonly clients = new Set<Socket>();
  private readonly authenticated = new Set<Socket>();
  private readonly txns = new Map<string, Transaction>();
  /** the dialogs drachtio-server holds */
  private readonly dialogs = new Map<string, Dialog>();
  /** every dialog the bot took part in: it still sends in one drachtio-server has forgotten */
  private readonly botDialogs = new Map<string, Dialog>();
  private refusal: string | undefined;
  private readonly botTag = randomBytes(4).toString('hex');

  private constructor(
    private server: Server,
    opts: FakeDrachtioOptions,
  ) {
    this.secret = opts.secret ?? FAKE_DRACHTIO_SECRET;
    this.hostports = opts.hostports ?? 'tls/127.0.0.1:5061,tcp/127.0.0.1:5060,udp/127.0.0.1:5060';
    this.version = opts.version ?? 'v0.9.10';
  }

  static async start(opts: FakeDrachtioOptions = {}): Promise<FakeDrachtio> {
    const server = createServer();
    const fake = new FakeDrachtio(server, opts);
    server.on('connection', (socket) => fake.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  private portNumber = 0;
  get port(): number {
    const address = this.server.address();
    if (address && typeof address === 'object') this.portNumber = address.port;
    return this.portNumber;
  }

  /** connections that passed `authenticate` and are still open */
  get authenticatedClients(): number {
    return this.authenticated.size;
  }

  /** dialogs drachtio-server still holds */
  get dialogCount(): number {
    return this.dialogs.size;
  }

  /** the next app `sip` request is refused with `NOK|<reason>` */
  refuseNext(reason: string): void {
    this.refusal = reason;
  }

  /** A drachtio-server restart: every control connection dropped, dialogs forgotten; still listening. */
  dropClients(): void {
    for (const socket of this.clients) socket.destroy();
    this.dialogs.clear();
  }

  /** drachtio-server gone: stop listening and drop every connection (srf keeps retrying). */
  async stopListening(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.dropClients();
    await closed;
  }

  /** drachtio-server back on the same port */
  async listenAgain(): Promise<void> {
    const port = this.port;
    this.server = createServer();
    this.server.on('connection', (socket) => this.accept(socket));
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    if (this.server.listening) await this.stopListening();
    else this.dropClients();
  }

  // ---- the bot: what reached it, and what it sends ----

  /** the next not yet consumed message the bot received: a method, or a status code ("200") for a response */
  async next(label: string, timeoutMs = 2000): Promise<BotReceived> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => !this.consumed.has(r) && r.label === label);
      if (hit) {
        this.consumed.add(hit);
        return hit;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake drachtio: the bot got no ${label} within ${timeoutMs} ms; got ${this.received.map((r) => r.label).join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** the final answer the request `txnId` of the bot got, consumed; undefined when none came within `timeoutMs` */
  async finalAnswer(txnId: string, timeoutMs = 1000): Promise<BotReceived | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find((r) => !this.consumed.has(r) && r.txnId === txnId && (r.sip.status ?? 0) >= 200);
      if (hit) {
        this.consumed.add(hit);
        return hit;
      }
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  count(label: string): number {
    return this.received.filter((r) => r.label === label).length;
  }

  /**
   * The bot answers a request it received; drachtio-server relays the answer to the app (not a CANCEL's, nor one to
   * its own BYE). A 1xx/2xx to the INVITE carries the bot's Contact: `headers.Contact`, or `<sip:bot@127.0.0.1:5070;
   * transport=…>`; the 2xx's is where drachtio-server sends the ACK and every later request of the dialog.
   */
  respond(to: BotReceived, status: number, reason: string, opts: { headers?: Record<string, string>; body?: string } = {}): void {
    const txn = this.txns.get(to.txnId);
    const dialog = this.botDialogs.get(to.dialogId);
    const method = to.sip.method!;
    const isInvite = method === 'INVITE';
    const toHeader = to.sip.get('to')!;
    const taggedTo = isInvite && status > 100 && !/;tag=/.test(toHeader) ? `${toHeader};tag=${this.botTag}` : toHeader;
    const { Contact: givenContact, ...headers } = opts.headers ?? {};
    const contact = isInvite && status > 100 && status < 300 && dialog ? (givenContact ?? `<sip:bot@${BOT_ADDRESS}:${BOT_PORT};transport=${dialog.transport.proto}>`) : givenContact;
    const body = opts.body ?? '';
    const raw = buildMessage(
      `SIP/2.0 ${status} ${reason}`,
      [
        ['Via', to.sip.get('via')!],
        ['From', to.sip.get('from')!],
        ['To', taggedTo],
        ['Call-ID', to.sip.get('call-id')!],
        ['CSeq', to.sip.get('cseq')!],
        ...(contact ? ([['Contact', contact]] as Array<[string, string]>) : []),
        ...Object.entries(headers),
      ],
      body,
    );
    if (method === 'CANCEL' || !txn) return; // sofia answers the CANCEL itself and never passes its 200 up
    if (status >= 200) {
      txn.final = true;
      this.txns.delete(to.txnId);
    }
    if (txn.side === 'server') return; // the answer to drachtio-server's own BYE stays with it
    if (isInvite && dialog && status >= 200) {
      if (status < 300) {
        dialog.state = 'confirmed';
        dialog.botTo = taggedTo;
        dialog.botContactUri = uriOf(contact!);
      } else {
        // the stack ACKs a non-2xx final response itself (RFC 3261 §17.1.1.3)
        dialog.state = 'failed';
        this.toBot(this.hopAck(to, taggedTo), to.txnId, to.dialogId);
      }
    }
    if (method === 'BYE' && status >= 200) this.dialogs.delete(to.dialogId);
    this.sendSip(txn.socket, 'network', raw, to.txnId, to.dialogId, txn.hop);
  }

  /**
   * The bot sends a request inside the dialog its INVITE created (BYE, re-INVITE, INFO …): on the connection
   * `opts.connection` says, from `opts.sourceAddress`. drachtio-server drops it when it does not listen there or the
   * Via transport is not the connection's (both recorded in `lost`), answers 481 itself for a dialog it no longer
   * holds, and otherwise relays it with its real source; the app's answer reaches the bot as a response labelled
   * with its status. Returns the transaction id.
   */
  request(invite: BotReceived, method: string, opts: BotRequestOptions = {}): string {
    const dialog = this.botDialogs.get(invite.dialogId);
    if (!dialog) throw new Error(`fake drachtio: the bot has no dialog ${invite.dialogId}`);
    // an ACK repeats its re-INVITE's CSeq number (RFC 3261 §17.1.1.3)
    const seq = opts.cseq ?? (method === 'ACK' ? dialog.botSeq : ++dialog.botSeq);
    const hop = this.botHop(dialog, opts);
    const viaProto = (opts.viaTransport ?? ('why' in hop ? 'udp' : hop.proto)).toUpperCase();
    const raw = buildMessage(
      `${method} ${dialog.appContactUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${viaProto} ${BOT_ADDRESS}:${BOT_PORT};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
        ['From', dialog.botTo],
        ['To', dialog.appFrom],
        ['Call-ID', dialog.callId],
        ['CSeq', `${seq} ${method}`],
        ['Max-Forwards', '70'],
        ['Contact', `<${dialog.botContactUri}>`],
        ...(opts.body && !Object.keys(opts.headers ?? {}).some((h) => h.toLowerCase() === 'content-type')
          ? ([['Content-Type', 'application/sdp']] as Array<[string, string]>)
          : []),
        ...Object.entries(opts.headers ?? {}),
      ],
      opts.body ?? '',
    );
    const txnId = randomUUID();
    if ('why' in hop) {
      this.lost.push({ method, why: hop.why });
      return txnId;
    }
    if (viaProto.toLowerCase() !== hop.proto) {
      this.lost.push({ method, why: 'Via check: invalid transport' });
      return txnId;
    }
    const sip = new SipMessage(raw);
    if (!this.dialogs.has(dialog.id)) {
      if (method !== 'ACK') this.toBot(answerOf(sip, 481, 'Call/Transaction Does Not Exist'), txnId, dialog.id);
      return txnId;
    }
    if (method !== 'ACK') this.txns.set(txnId, { request: sip, side: 'uas', dialogId: dialog.id, socket: dialog.socket, final: false, hop });
    this.sendSip(dialog.socket, 'network', raw, txnId, dialog.id, hop);
    return txnId;
  }

  /** The bot ACKs the 2xx to its last re-INVITE, optionally with the SDP answer to an offer in that 2xx. */
  ack(invite: BotReceived, body?: string): void {
    this.request(invite, 'ACK', body ? { body } : {});
  }

  /**
   * drachtio-server ends the dialog on its own (RFC 4028 session expiry, src/sip-dialog-controller.cpp): it BYEs the
   * bot and tells the app with that BYE as sent, `sip|application|…|unsolicited|<dialogId>|`: our From, its Reason,
   * none of the bot's headers.
   */
  serverGeneratedBye(invite: BotReceived): void {
    const dialog = this.dialogs.get(invite.dialogId)!;
    const { transport } = dialog;
    const raw = buildMessage(
      `BYE ${dialog.botContactUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${transport.proto.toUpperCase()} ${transport.host}:${transport.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
        ['Max-Forwards', '70'],
        ['From', dialog.appFrom],
        ['To', dialog.botTo],
        ['Call-ID', dialog.callId],
        ['CSeq', `${++dialog.appSeq} BYE`],
        ['Reason', 'SIP;cause=200;text="Session timer expired"'],
      ],
      '',
    );
    this.dialogs.delete(dialog.id);
    const txnId = randomUUID();
    this.txns.set(txnId, { request: new SipMessage(raw), side: 'server', dialogId: dialog.id, socket: dialog.socket, final: false, hop: botEnd(transport.proto) });
    this.toBot(raw, txnId, dialog.id);
    this.sendSip(dialog.socket, 'application', raw, 'unsolicited', dialog.id, ownEnd(transport));
  }

  /** Where the bot's request travels: the INVITE's connection, or a new one to our Contact (RFC 3263 §4.1). */
  private botHop(dialog: Dialog, opts: BotRequestOptions): Hop | { why: string } {
    const address = opts.sourceAddress ?? BOT_ADDRESS;
    if ((opts.connection ?? 'reuse') === 'reuse') return { proto: dialog.transport.proto, address, port: BOT_PORT };
    const target = SipMessage.parseUri(dialog.appContactUri);
    if (!target) return { why: `our Contact ${dialog.appContactUri} is not a SIP URI` };
    const proto = target.params.transport?.toLowerCase() ?? (target.scheme === 'sips' ? 'tls' : 'udp');
    const port = String(target.port ?? (proto === 'tls' ? 5061 : 5060));
    if (!this.listeners().some((l) => l.proto === proto && l.host === target.host && l.port === port)) {
      return { why: `drachtio-server does not listen on ${proto} ${target.host}:${port}` };
    }
    return { proto, address, port: proto === 'udp' ? BOT_PORT : String(randomInt(49152, 65536)) };
  }

  // ---- the control protocol ----

  private accept(socket: Socket): void {
    this.clients.add(socket);
    let buffer = Buffer.alloc(0);
    socket.on('data', (data) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        const hash = buffer.indexOf('#');
        if (hash <= 0) return;
        const length = Number(buffer.subarray(0, hash).toString('utf8'));
        if (!Number.isInteger(length) || length <= 0) {
          socket.destroy(); // drachtio-server bounces a client that sends a bad length specifier
          return;
        }
        if (buffer.length < hash + 1 + length) return;
        const text = buffer.subarray(hash + 1, hash + 1 + length).toString('utf8');
        buffer = buffer.subarray(hash + 1 + length);
        this.fromApp.push(text);
        this.onClientMessage(socket, text);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.clients.delete(socket);
      this.authenticated.delete(socket);
    });
  }

  private onClientMessage(socket: Socket, text: string): void {
    const eol = text.indexOf(CRLF);
    const leader = eol === -1 ? text : text.slice(0, eol);
    const body = eol === -1 ? '' : text.slice(eol + 2);
    const tokens = leader.split('|');
    const [msgId = '', type] = tokens;
    switch (type) {
      case 'authenticate':
        if (tokens[2] === this.secret) {
          this.authenticated.add(socket);
          // the local hostports are the same on a server without an external address
          this.reply(socket, msgId, `OK|${this.hostports}|${this.version}|${this.hostports}`);
        } else {
          this.reply(socket, msgId, 'NO|incorrect secret');
          socket.end(); // the server leaves a client that failed to authenticate
        }
        return;
      case 'ping':
        this.reply(socket, msgId, 'OK|pong');
        return;
      case 'route':
      case 'remove_route':
        this.reply(socket, msgId, 'OK');
        return;
      case 'sip':
        if (!this.authenticated.has(socket)) {
          this.reply(socket, msgId, 'NO|not authenticated');
          return;
        }
        this.onAppSip(socket, msgId, tokens[2] ?? '', tokens[3] ?? '', body);
        return;
      default:
        this.reply(socket, msgId, 'NO|Unknown message type');
        socket.end();
    }
  }

  private onAppSip(socket: Socket, msgId: string, txnId: string, dialogId: string, raw: string): void {
    if (this.refusal !== undefined) {
      const reason = this.refusal;
      this.refusal = undefined;
      this.reply(socket, msgId, `NOK|${reason}`);
      return;
    }
    let sip: SipMessage;
    try {
      sip = new SipMessage(raw);
    } catch {
      this.reply(socket, msgId, 'NOK|Server error: unparseable message');
      return;
    }
    if (sip.type === 'response') this.appResponse(socket, msgId, txnId, sip);
    else if (dialogId) this.appRequestInDialog(socket, msgId, txnId || randomUUID(), dialogId, sip);
    else if (sip.method === 'CANCEL') this.appCancel(socket, msgId, txnId, sip);
    else this.appRequestOutsideDialog(socket, msgId, txnId || randomUUID(), sip);
  }

  /** the app answers a request the bot sent (its BYE, re-INVITE, INFO …), on the connection it came on */
  private appResponse(socket: Socket, msgId: string, txnId: string, sip: SipMessage): void {
    const txn = this.txns.get(txnId);
    if (!txn) {
      this.reply(socket, msgId, 'NOK|Server error: unknown transaction id');
      return;
    }
    const { request } = txn;
    const raw = buildMessage(
      `SIP/2.0 ${sip.status} ${sip.reason ?? ''}`.trimEnd(),
      [
        ['Via', request.get('via')!],
        ['From', request.get('from')!],
        ['To', request.get('to')!],
        ['Call-ID', request.get('call-id')!],
        ['CSeq', request.get('cseq')!],
        ...appHeaders(sip, ['via', 'from', 'to', 'call-id', 'cseq', 'content-length']),
      ],
      sip.body ?? '',
    );
    const status = sip.status ?? 0;
    if (status >= 200) {
      this.txns.delete(txnId);
      // a BYE refused (403 to a stranger) leaves the dialog up; 481 says it was gone (RFC 5057 §5.1)
      if (request.method === 'BYE' && (status < 300 || status === 481)) this.dialogs.delete(txn.dialogId);
    }
    this.reply(socket, msgId, `OK|application|${Buffer.byteLength(raw)}||||${stackTime()}|${txnId}|${txn.dialogId}||Msg sent:|${CRLF}${raw}`);
    this.toBot(raw, txnId, txn.dialogId);
  }

  private appRequestInDialog(socket: Socket, msgId: string, txnId: string, dialogId: string, sip: SipMessage): void {
    const method = sip.method!;
    const dialog = this.dialogs.get(dialogId);
    if (!dialog) {
      this.reply(
        socket,
        msgId,
        method === 'ACK'
          ? 'NOK|Server error: ACK for non-success final response is automatically generated by server'
          : 'NOK|Server error: unable to find dialog for dialog id provided',
      );
      return;
    }
    if (method === 'ACK' && dialog.state !== 'confirmed') {
      this.dialogs.delete(dialogId);
      this.reply(socket, msgId, 'NOK|ACK for non-success responses is automatically generated by the stack');
      return;
    }
    const seq = method === 'ACK' ? dialog.inviteSeq : ++dialog.appSeq;
    const { transport } = dialog;
    const raw = buildMessage(
      `${method} ${dialog.botContactUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${transport.proto.toUpperCase()} ${transport.host}:${transport.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
        ['Max-Forwards', '70'],
        ['From', dialog.appFrom],
        ['To', dialog.botTo],
        ['Call-ID', dialog.callId],
        ['CSeq', `${seq} ${method}`],
        ...appHeaders(sip, ['via', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'content-length']),
        ...(sip.body && !sip.has('content-type') ? ([['Content-Type', 'application/sdp']] as Array<[string, string]>) : []),
      ],
      sip.body ?? '',
    );
    this.sendToBot(socket, msgId, raw, txnId, dialogId, dialog.botContactUri, transport);
  }

  private appCancel(socket: Socket, msgId: string, txnId: string, sip: SipMessage): void {
    const txn = this.txns.get(txnId);
    if (!txn || txn.final) {
      this.reply(socket, msgId, 'NOK|Server error: unknown transaction id or transaction already completed');
      return;
    }
    const invite = txn.request;
    const seq = invite.get('cseq')!.split(' ')[0];
    const raw = buildMessage(
      `CANCEL ${invite.uri} SIP/2.0`,
      [
        ['Via', invite.get('via')!],
        ['Max-Forwards', '70'],
        ['From', invite.get('from')!],
        ['To', invite.get('to')!],
        ['Call-ID', invite.get('call-id')!],
        ['CSeq', `${seq} CANCEL`],
        ...appHeaders(sip, ['via', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'content-length']),
      ],
      '',
    );
    const transport = this.dialogs.get(txn.dialogId)?.transport ?? this.transportFor(invite.uri!)!;
    this.replySent(socket, msgId, raw, txnId, transport);
    this.toBot(raw, txnId, txn.dialogId);
  }

  private appRequestOutsideDialog(socket: Socket, msgId: string, txnId: string, sip: SipMessage): void {
    const method = sip.method!;
    const requestUri = sip.uri!;
    const transport = this.transportFor(requestUri);
    if (!transport) {
      this.reply(socket, msgId, 'NOK|requested protocol/transport not available');
      return;
    }
    const local = `${transport.host}:${transport.port}`;
    const tag = randomBytes(4).toString('hex');
    const fromGiven = sip.get('from');
    let from = fromGiven ? fromGiven.replace('@localhost', `@${local}`) : `<sip:${local}>`;
    if (!/;tag=/.test(from)) from = `${from};tag=${tag}`;
    // only the host is swapped in: a parameter the app wrote (;transport=tls) stays
    const contact = sip.get('contact')?.replace('@localhost', `@${local}`) ?? `<sip:${local};transport=${transport.proto}>`;
    const callId = sip.get('call-id') ?? `${randomUUID()}`;
    const to = sip.get('to') ?? requestUri;
    // sofia starts a dialog's CSeq at a random number
    const seq = randomInt(1, 0x40000000);
    const raw = buildMessage(
      `${method} ${requestUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${transport.proto.toUpperCase()} ${local};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
        ['Max-Forwards', '70'],
        ['From', from],
        ['To', to],
        ['Call-ID', callId],
        ['CSeq', `${seq} ${method}`],
        ['Contact', contact],
        ...appHeaders(sip, ['via', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'contact', 'content-length']),
        ...(sip.body && !sip.has('content-type') ? ([['Content-Type', 'application/sdp']] as Array<[string, string]>) : []),
      ],
      sip.body ?? '',
    );
    let dialogId = '';
    if (method === 'INVITE') {
      dialogId = `${callId};from-tag=${/;tag=([^;>\s]+)/.exec(from)![1]}`;
      const dialog: Dialog = {
        id: dialogId,
        socket,
        callId,
        appFrom: from,
        botTo: to,
        appContactUri: uriOf(contact),
        botContactUri: '',
        inviteSeq: seq,
        appSeq: seq,
        botSeq: randomInt(1, 0x40000000),
        state: 'calling',
        transport,
      };
      this.dialogs.set(dialogId, dialog);
      this.botDialogs.set(dialogId, dialog);
    }
    this.sendToBot(socket, msgId, raw, txnId, dialogId, requestUri, transport);
  }

  /**
   * A request of the app, completed, goes where its target says: "Msg sent" to the app, then to the bot if it
   * listens there. No such host, or nothing listening over TCP/TLS (the connection fails): drachtio-server answers
   * 503 itself. Over UDP to where nothing listens the datagram is simply lost.
   */
  private sendToBot(socket: Socket, msgId: string, raw: string, txnId: string, dialogId: string, target: string, transport: Listener): void {
    const sip = new SipMessage(raw);
    const method = sip.method!;
    if (method !== 'ACK') this.txns.set(txnId, { request: sip, side: 'uac', dialogId, socket, final: false, hop: botEnd(transport.proto) });
    this.replySent(socket, msgId, raw, txnId, transport);
    const uri = SipMessage.parseUri(target);
    if (uri?.host === BOT_ADDRESS && String(uri.port ?? '') === BOT_PORT) {
      this.toBot(raw, txnId, dialogId);
      return;
    }
    // RFC 2606 .invalid: no such host, whatever the transport
    const noSuchHost = uri?.host.endsWith('.invalid') ?? true;
    this.lost.push({ method, why: noSuchHost ? `no such host ${uri?.host}` : `the bot does not listen on ${transport.proto} ${uri?.host}:${uri?.port}` });
    if (method === 'ACK' || (transport.proto === 'udp' && !noSuchHost)) return;
    this.txns.delete(txnId);
    if (method === 'INVITE' || method === 'BYE') this.dialogs.delete(dialogId);
    const failed = `${randomUUID()}|sip|network|0|${transport.proto}||0|${stackTime()}|${txnId}|${dialogId}|${CRLF}`;
    send(socket, failed + answerOf(sip, 503, 'Service Unavailable'));
  }

  /** the transports drachtio-server has bound */
  private listeners(): Listener[] {
    const found: Listener[] = [];
    for (const entry of this.hostports.split(',')) {
      const m = /^([a-z]+)\/([^:]+|\[[^\]]+\]):(\d+)$/i.exec(entry.trim());
      if (m) found.push({ proto: m[1]!.toLowerCase(), host: m[2]!, port: m[3]! });
    }
    return found;
  }

  /** drachtio-server picks by the `;transport=` parameter, udp when there is none (sip-notes §1.4) */
  private transportFor(uri: string): Listener | undefined {
    const wanted = (/;transport=([a-z]+)/i.exec(uri)?.[1] ?? 'udp').toLowerCase();
    return this.listeners().find((l) => l.proto === wanted);
  }

  private hopAck(invite: BotReceived, taggedTo: string): string {
    const seq = invite.sip.get('cseq')!.split(' ')[0];
    return buildMessage(
      `ACK ${invite.sip.uri} SIP/2.0`,
      [
        ['Via', invite.sip.get('via')!],
        ['Max-Forwards', '70'],
        ['From', invite.sip.get('from')!],
        ['To', taggedTo],
        ['Call-ID', invite.sip.get('call-id')!],
        ['CSeq', `${seq} ACK`],
      ],
      '',
    );
  }

  private toBot(raw: string, txnId: string, dialogId: string): void {
    const sip = new SipMessage(raw);
    this.received.push({ sip, raw, label: sip.method ?? String(sip.status), txnId, dialogId });
    for (const wake of this.waiters.splice(0)) wake();
  }

  private reply(socket: Socket, msgId: string, rest: string): void {
    send(socket, `${randomUUID()}|response|${msgId}|${rest}`);
  }

  /** "Msg sent" for a request of the app: the transport it went out on, drachtio-server's own address */
  private replySent(socket: Socket, msgId: string, raw: string, txnId: string, transport: Listener): void {
    const meta = `application|${Buffer.byteLength(raw)}|${transport.proto}|${transport.host}|${transport.port}|${stackTime()}`;
    this.reply(socket, msgId, `OK|${meta}|${txnId}|Msg sent:|${CRLF}${raw}`);
  }

  private sendSip(socket: Socket, source: 'network' | 'application', raw: string, txnId: string, dialogId: string, from: Hop): void {
    const meta = `${source}|${Buffer.byteLength(raw)}|${from.proto}|${from.address}|${from.port}|${stackTime()}`;
    send(socket, `${randomUUID()}|sip|${meta}|${txnId}|${dialogId}|${CRLF}${raw}`);
  }
}

function send(socket: Socket, text: string): void {
  if (!socket.destroyed) socket.write(`${Buffer.byteLength(text)}#${text}`);
}

function buildMessage(startLine: string, headers: Array<[string, string]>, body: string): string {
  const lines = [startLine, ...headers.map(([name, value]) => `${name}: ${value}`), `Content-Length: ${Buffer.byteLength(body)}`];
  return `${lines.join(CRLF)}${CRLF}${CRLF}${body}`;
}

/** a response made without the far end: drachtio-server's 481 to the bot, or its 503 to the app */
function answerOf(request: SipMessage, status: number, reason: string): string {
  return buildMessage(
    `SIP/2.0 ${status} ${reason}`,
    [
      ['Via', request.get('via')!],
      ['From', request.get('from')!],
      ['To', request.get('to')!],
      ['Call-ID', request.get('call-id')!],
      ['CSeq', request.get('cseq')!],
    ],
    '',
  );
}

/** the app's own headers, in the form it gave them, minus the ones the server writes */
function appHeaders(sip: SipMessage, skip: string[]): Array<[string, string]> {
  return Object.entries(sip.headers).filter(([name]) => !skip.includes(name.toLowerCase()));
}

/** the URI inside a name-addr (`<sip:…>;params`), or the value itself */
function uriOf(nameAddr: string): string {
  return /<([^>]+)>/.exec(nameAddr)?.[1] ?? nameAddr.split(';')[0]!;
}

/** the bot's end of a connection drachtio-server opened to it */
function botEnd(proto: string): Hop {
  return { proto, address: BOT_ADDRESS, port: BOT_PORT };
}

/** drachtio-server's own end of a transport */
function ownEnd(transport: Listener): Hop {
  return { proto: transport.proto, address: transport.host, port: transport.port };
}

function stackTime(): string {
  return new Date().toISOString().slice(11, 23);
}
