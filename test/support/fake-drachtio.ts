import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import SipMessage from 'drachtio-srf/lib/sip-parser/message.js';

/**
 * A scripted drachtio-server for tests: its control protocol on a loopback TCP port, with a scriptable SIP far end
 * (the "bot") behind it, so the unmodified drachtio-srf drives it as it drives the real server.
 *
 * The protocol (drachtio-server src/client.cpp, src/sip-dialog-controller.cpp; drachtio-srf lib/wire-protocol.js,
 * lib/drachtio-agent.js; sip-notes §1.6–1.7): every frame is `<byte length>#<text>`, the text
 * `<msgId>|<type>|<tokens…>`, a SIP message after the first CRLF.
 *
 *   app → server                                   server → app
 *   authenticate|<secret>|<tags>                   response|<msgId>|OK|<hostports>|<version>   (NO|incorrect secret, then close)
 *   route|<verb>, remove_route|<verb>, ping        response|<msgId>|OK[|pong]
 *   sip|<txnId>|<dialogId>[|<route>]\r\n<SIP>      response|<msgId>|OK|application|<len>|<proto>|<addr>|<port>|<time>|<txnId>|Msg sent:|\r\n<SIP as sent>
 *                                                  response|<msgId>|NOK|<reason>   (refused: no dialog, no transport …)
 *                                                  sip|network|<len>|<proto>|<addr>|<port>|<time>|<txnId>|<dialogId>|\r\n<SIP>
 *                                                  sip|application|…|unsolicited|<dialogId>|\r\n<BYE>  (the server's own BYE)
 *
 * What the real server does and this fake does too: it completes the app's requests (Via, tags, Call-ID, CSeq,
 * `@localhost` → the chosen transport's address, Contact, Content-Type for SDP, Content-Length) and echoes them;
 * it picks the transport from the request-URI's `;transport=` and refuses one it has not bound; it ACKs non-2xx
 * answers itself and refuses the app's ACK for them; it does not pass up the 200 to a CANCEL; it forgets a dialog
 * once a BYE is answered and refuses in-dialog requests for it ("unable to find dialog"). A 1xx reaches the app
 * whole, as the bot sent it: To tag, Contact, Content-Type and body (an 18x SDP for early media), under the INVITE's
 * transaction id, which srf hands to createUAC's cbProvisional (lib/drachtio-agent.js _onMsg, lib/srf.js createUAC).
 *
 * What it does not reproduce: reliable provisionals (RFC 3262: a 1xx with RSeq, which srf PRACKs by itself; the fake
 * would relay that PRACK to the bot but nothing answers it), retransmissions of the bot's 1xx and 2xx (the real
 * server's stack absorbs them), multipart bodies, and drachtio-server's own 100 Trying handling.
 */

export interface FakeDrachtioOptions {
  secret?: string;
  /** the SIP transports announced on authentication */
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

interface Transaction {
  /** the request as the bot received it (uac) or sent it (uas) */
  request: SipMessage;
  /** uac: the app sent it; uas: the bot sent it to the app */
  side: 'uac' | 'uas';
  dialogId: string;
  socket: Socket;
  final: boolean;
}

interface Dialog {
  id: string;
  socket: Socket;
  callId: string;
  /** the app's From (with its tag) and the bot's To (with the bot's tag, once answered) */
  appFrom: string;
  botTo: string;
  appContactUri: string;
  botContactUri: string;
  inviteSeq: number;
  appSeq: number;
  botSeq: number;
  state: 'calling' | 'confirmed' | 'failed';
  transport: { proto: string; host: string; port: string };
}

const CRLF = '\r\n';
export const FAKE_DRACHTIO_SECRET = 'cymru';

export class FakeDrachtio {
  readonly secret: string;
  hostports: string;
  readonly version: string;
  readonly received: BotReceived[] = [];
  /** every control message the app sent, for assertions */
  readonly fromApp: string[] = [];
  private readonly consumed = new Set<BotReceived>();
  private waiters: Array<() => void> = [];
  private readonly clients = new Set<Socket>();
  private readonly authenticated = new Set<Socket>();
  private readonly txns = new Map<string, Transaction>();
  private readonly dialogs = new Map<string, Dialog>();
  private refusal: string | undefined;
  private readonly botTag = randomBytes(4).toString('hex');

  private constructor(
    private server: Server,
    opts: FakeDrachtioOptions,
  ) {
    this.secret = opts.secret ?? FAKE_DRACHTIO_SECRET;
    this.hostports = opts.hostports ?? 'udp/127.0.0.1:5060,tcp/127.0.0.1:5060';
    this.version = opts.version ?? 'v0.9.4-fake';
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

  count(label: string): number {
    return this.received.filter((r) => r.label === label).length;
  }

  /** The bot answers a request it received; drachtio-server relays the answer to the app (not a CANCEL's). */
  respond(to: BotReceived, status: number, reason: string, opts: { headers?: Record<string, string>; body?: string } = {}): void {
    const txn = this.txns.get(to.txnId);
    const dialog = this.dialogs.get(to.dialogId);
    const method = to.sip.method!;
    const isInvite = method === 'INVITE';
    const toHeader = to.sip.get('to')!;
    const taggedTo = isInvite && status > 100 && !/;tag=/.test(toHeader) ? `${toHeader};tag=${this.botTag}` : toHeader;
    const body = opts.body ?? '';
    const raw = buildMessage(
      `SIP/2.0 ${status} ${reason}`,
      [
        ['Via', to.sip.get('via')!],
        ['From', to.sip.get('from')!],
        ['To', taggedTo],
        ['Call-ID', to.sip.get('call-id')!],
        ['CSeq', to.sip.get('cseq')!],
        ...(isInvite && status > 100 && status < 300 && dialog ? ([['Contact', `<${dialog.botContactUri}>`]] as Array<[string, string]>) : []),
        ...Object.entries(opts.headers ?? {}),
      ],
      body,
    );
    if (method === 'CANCEL' || !txn) return; // sofia answers the CANCEL itself and never passes its 200 up
    if (status >= 200) txn.final = true;
    if (isInvite && dialog && status >= 200) {
      if (status < 300) {
        dialog.state = 'confirmed';
        dialog.botTo = taggedTo;
      } else {
        // the stack ACKs a non-2xx final response itself (RFC 3261 §17.1.1.3)
        dialog.state = 'failed';
        this.toBot(this.hopAck(to, taggedTo), to.txnId, to.dialogId);
      }
    }
    if (method === 'BYE' && status >= 200) this.dialogs.delete(to.dialogId);
    if (status >= 200) this.txns.delete(to.txnId);
    this.sendSip(txn.socket, 'network', raw, to.txnId, to.dialogId, dialog?.transport);
  }

  /** The bot sends a request inside the dialog its INVITE created (BYE, re-INVITE, INFO …); the app's answer
   * reaches the bot as a response labelled with its status. Returns the transaction id. */
  request(invite: BotReceived, method: string, opts: { headers?: Record<string, string>; body?: string } = {}): string {
    const dialog = this.dialogs.get(invite.dialogId);
    if (!dialog) throw new Error(`fake drachtio: no dialog ${invite.dialogId}`);
    // an ACK repeats its re-INVITE's CSeq number (RFC 3261 §17.1.1.3)
    const seq = method === 'ACK' ? dialog.botSeq : ++dialog.botSeq;
    const raw = buildMessage(
      `${method} ${dialog.appContactUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${dialog.transport.proto.toUpperCase()} ${botHostport(dialog)};branch=z9hG4bK${randomBytes(6).toString('hex')}`],
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
    if (method !== 'ACK') this.txns.set(txnId, { request: new SipMessage(raw), side: 'uas', dialogId: dialog.id, socket: dialog.socket, final: false });
    this.sendSip(dialog.socket, 'network', raw, txnId, dialog.id, dialog.transport);
    return txnId;
  }

  /** The bot ACKs the 2xx to its last re-INVITE, optionally with the SDP answer to an offer in that 2xx. */
  ack(invite: BotReceived, body?: string): void {
    this.request(invite, 'ACK', body ? { body } : {});
  }

  /** drachtio-server ends the dialog on its own (session timer expiry) and tells the app with a BYE from 'application'. */
  serverGeneratedBye(invite: BotReceived): void {
    const dialog = this.dialogs.get(invite.dialogId)!;
    const raw = buildMessage(
      `BYE ${dialog.appContactUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/UDP ${dialog.transport.host}:${dialog.transport.port};branch=z9hG4bK${randomBytes(6).toString('hex')}`],
        ['From', dialog.botTo],
        ['To', dialog.appFrom],
        ['Call-ID', dialog.callId],
        ['CSeq', `${++dialog.botSeq} BYE`],
        ['Max-Forwards', '70'],
        ['Reason', 'SIP ;cause=200 ;text="Session timer expired"'],
        ['X-Escalate', 'true'],
      ],
      '',
    );
    this.dialogs.delete(dialog.id);
    this.sendSip(dialog.socket, 'application', raw, 'unsolicited', dialog.id, dialog.transport);
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
          this.reply(socket, msgId, `OK|${this.hostports}|${this.version}`);
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

  /** the app answers a request the bot sent (its BYE, re-INVITE, INFO …) */
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
    if ((sip.status ?? 0) >= 200) {
      this.txns.delete(txnId);
      if (request.method === 'BYE') this.dialogs.delete(txn.dialogId);
    }
    this.replySent(socket, msgId, raw, txnId);
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
    const raw = buildMessage(
      `${method} ${dialog.botContactUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${dialog.transport.proto.toUpperCase()} ${dialog.transport.host}:${dialog.transport.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
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
    if (method !== 'ACK') this.txns.set(txnId, { request: new SipMessage(raw), side: 'uac', dialogId, socket, final: false });
    this.replySent(socket, msgId, raw, txnId);
    this.toBot(raw, txnId, dialogId);
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
    this.replySent(socket, msgId, raw, txnId);
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
    const contact = sip.get('contact')?.replace('@localhost', `@${local}`) ?? `<sip:${local};transport=${transport.proto}>`;
    const callId = sip.get('call-id') ?? `${randomUUID()}`;
    const to = sip.get('to') ?? requestUri;
    const raw = buildMessage(
      `${method} ${requestUri} SIP/2.0`,
      [
        ['Via', `SIP/2.0/${transport.proto.toUpperCase()} ${local};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
        ['Max-Forwards', '70'],
        ['From', from],
        ['To', to],
        ['Call-ID', callId],
        ['CSeq', `1 ${method}`],
        ['Contact', contact],
        ...appHeaders(sip, ['via', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'contact', 'content-length']),
        ...(sip.body && !sip.has('content-type') ? ([['Content-Type', 'application/sdp']] as Array<[string, string]>) : []),
      ],
      sip.body ?? '',
    );
    const sent = new SipMessage(raw);
    let dialogId = '';
    if (method === 'INVITE') {
      dialogId = `${callId};from-tag=${/;tag=([^;>\s]+)/.exec(from)![1]}`;
      const target = SipMessage.parseUri(requestUri);
      this.dialogs.set(dialogId, {
        id: dialogId,
        socket,
        callId,
        appFrom: from,
        botTo: to,
        appContactUri: /<([^>]+)>/.exec(contact)?.[1] ?? contact,
        botContactUri: `sip:bot@${target?.host ?? '127.0.0.1'}:${target?.port ?? 5060};transport=${transport.proto}`,
        inviteSeq: 1,
        appSeq: 1,
        botSeq: 0,
        state: 'calling',
        transport,
      });
    }
    this.txns.set(txnId, { request: sent, side: 'uac', dialogId, socket, final: false });
    this.replySent(socket, msgId, raw, txnId);
    this.toBot(raw, txnId, dialogId);
  }

  /** drachtio-server picks by the `;transport=` parameter, udp when there is none (sip-notes §1.4) */
  private transportFor(uri: string): Dialog['transport'] | undefined {
    const wanted = (/;transport=([a-z]+)/i.exec(uri)?.[1] ?? 'udp').toLowerCase();
    for (const entry of this.hostports.split(',')) {
      const m = /^([a-z]+)\/([^:]+|\[[^\]]+\]):(\d+)$/i.exec(entry.trim());
      if (m && m[1]!.toLowerCase() === wanted) return { proto: wanted, host: m[2]!, port: m[3]! };
    }
    return undefined;
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

  private replySent(socket: Socket, msgId: string, raw: string, txnId: string): void {
    const meta = `application|${Buffer.byteLength(raw)}|udp|127.0.0.1|5060|${stackTime()}`;
    this.reply(socket, msgId, `OK|${meta}|${txnId}|Msg sent:|${CRLF}${raw}`);
  }

  private sendSip(socket: Socket, source: 'network' | 'application', raw: string, txnId: string, dialogId: string, transport?: Dialog['transport']): void {
    const meta = `${source}|${Buffer.byteLength(raw)}|${transport?.proto ?? 'udp'}|127.0.0.1|5070|${stackTime()}`;
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

/** the app's own headers, in the form it gave them, minus the ones the server writes */
function appHeaders(sip: SipMessage, skip: string[]): Array<[string, string]> {
  return Object.entries(sip.headers).filter(([name]) => !skip.includes(name.toLowerCase()));
}

function botHostport(dialog: Dialog): string {
  const m = /@([^;>]+)/.exec(dialog.botContactUri);
  return m?.[1] ?? '127.0.0.1:5070';
}

function stackTime(): string {
  return new Date().toISOString().slice(11, 23);
}
