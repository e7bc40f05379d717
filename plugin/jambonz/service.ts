import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { DialVerb, Session } from '@jambonz/node-client-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { ipRangeMatcher } from '../../config/ip-range.js';
import { requireQuietly } from '../../config/quiet-require.js';
import type { PluginConfig } from '../../config/schema.js';
import { LogLimiter } from '../../media/log-limiter.js';
import { resolveCcaiTarget, type CcaiTarget } from './target.js';
import { listenOn } from '../operations/listen.js';
import { HTTP_LIMITS } from '../talkdesk/server.js';
import { rejectUpgrade } from '../talkdesk/upgrade-refusal.js';

// The index requires lib/utils/validator.js, which console.logs when first loaded; config/app-json.ts has usually
// loaded it already, but stdout must stay pure JSON logs whatever the import order.
const { createEndpoint } = requireQuietly<typeof import('@jambonz/node-client-ws')>('@jambonz/node-client-ws');

/** the WebSocket subprotocol jambonz offers, and the only one node-client-ws accepts */
export const JAMBONZ_SUBPROTOCOL = 'ws.jambonz.org';

/** jambonz sends session:new as soon as its socket opens (feature-server ws-requestor); a silent socket is not jambonz */
const FIRST_MESSAGE_TIMEOUT_MS = 10_000;
/**
 * jambonz's messages are small JSON (session:new with its env_vars, verb:hook outcomes): 1 MiB is far above any of
 * them and bounds what one frame can make us buffer.
 */
export const MAX_SERVICE_FRAME_BYTES = 1024 * 1024;
/** on shutdown, how long a service socket has to answer our close before it is cut */
const CLOSE_GRACE_MS = 1_000;

/** What a jambonz call hears, before we hang up, when its settings make no CCAI target to dial. */
export const NO_TARGET_TEXT = 'This call cannot be connected to the virtual agent. Goodbye.';

/** the actionHook of our `dial`: jambonz sends the dial's outcome back on the session's socket as a `verb:hook` */
export const DIAL_ACTION_HOOK = '/ccai-dial-done';

export interface JambonzServiceOptions {
  /** JAMBONZ_SERVICE_HOST/PORT: a listener of its own, private like metrics (0 picks a free port) */
  host: string;
  port: number;
  /** where jambonz connects (subprotocol ws.jambonz.org) and the portal reads the settings (OPTIONS), exactly */
  servicePath: string;
  /** JAMBONZ_SERVICE_SOURCES: the addresses and ranges allowed to connect; anyone else gets 403 */
  sources: readonly string[];
  /** at most this many service sockets at once (MAX_CALLS); the next upgrade gets 503 */
  maxSockets: number;
  /** the settings schema `OPTIONS <servicePath>` answers (portal-schema.ts), or undefined for 404 */
  portalBody: string | undefined;
  log: Logger;
  /** this instance's SIP settings: where a jambonz call on the service path is dialled (its env_vars over them) */
  sip: PluginConfig['sip'];
}

export interface JambonzService {
  /** the port actually bound (JAMBONZ_SERVICE_PORT 0 picks one) */
  readonly port: number;
  /** close every open service socket (1001) and the listener */
  close(): Promise<void>;
}

/**
 * The jambonz application service (node-client-ws) on a listener of its own, never on the internet-facing Talkdesk
 * port. Before any WebSocket code runs, each request is checked in this order:
 * - its source is in JAMBONZ_SERVICE_SOURCES, else 403 (one log line per interval, not per request);
 * - its raw path (query ignored) is exactly the service path, with or without a trailing slash, else 404: no URL
 *   normalisation, so `//host/ccai`, `/x/../ccai`, `/./ccai`, `/ccai/.` or `%63` escapes name nothing here;
 * - an upgrade offers the ws.jambonz.org subprotocol, else 400, and fits under `maxSockets`, else 503.
 * Our own WebSocketServer takes the upgrade, with frames capped at MAX_SERVICE_FRAME_BYTES (ws's default is
 * 100 MiB, buffered whole before any listener sees it) and no compression, and hands the socket to node-client-ws's
 * service. node-client-ws's own upgrade listener is never installed (the stand-in server swallows it): it has no
 * frame limit, and its async listener rejects unhandled on a pipelined request.
 */
export async function startJambonzService(opts: JambonzServiceOptions): Promise<JambonzService> {
  const { servicePath, maxSockets } = opts;
  const log = opts.log.child({ component: 'jambonz' });
  const servicePaths = new Set([servicePath, servicePath.endsWith('/') ? servicePath.slice(0, -1) : `${servicePath}/`]);
  const allowed = ipRangeMatcher(opts.sources);
  const refusedSource = new LogLimiter();
  const sockets = new Set<WebSocket>();
  const server = http.createServer({
    headersTimeout: HTTP_LIMITS.headersTimeoutMs,
    requestTimeout: HTTP_LIMITS.requestTimeoutMs,
    connectionsCheckingInterval: HTTP_LIMITS.checkIntervalMs,
  });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_SERVICE_FRAME_BYTES, // larger: ws closes with 1009 as soon as the frame header says so
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(JAMBONZ_SUBPROTOCOL) ? JAMBONZ_SUBPROTOCOL : false),
  });

  const makeService = createEndpoint({ server: { on: () => undefined }, logger: log, middlewares: [], externalWss: [] });
  const service = makeService({ path: servicePath });
  service.on('session:new', (session: Session) => answerCall(session, opts.sip, log));
  service.on('session:reconnect', (session: Session) => resumeCall(session, log));

  /** the refusal this request gets, if any: the source first, so a stranger learns nothing about paths */
  const refusal = (req: http.IncomingMessage): { status: number; reason: string } | undefined => {
    const source = req.socket.remoteAddress ?? '';
    if (!allowed(source)) {
      const suppressed = refusedSource.take();
      if (suppressed >= 0) log.warn({ source, suppressed }, 'jambonz service refused: source not in JAMBONZ_SERVICE_SOURCES');
      return { status: 403, reason: 'source not allowed' };
    }
    if (!servicePaths.has(rawPathOf(req))) return { status: 404, reason: 'unknown path' };
    return undefined;
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const refused = refusal(req);
    if (refused) {
      res.writeHead(refused.status, { 'content-type': 'text/plain' }).end(`${refused.reason}\n`);
      return;
    }
    // the jambonz api-server asks this (Accept: application/json) when a call hook URL is saved in the portal
    if (req.method === 'OPTIONS' && opts.portalBody !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(opts.portalBody);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'upgrade socket error'));
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const refused = refusal(req);
    if (refused) {
      rejectUpgrade(socket, refused.status, refused.reason);
      if (refused.status !== 403) log.info({ remote, path: rawPathOf(req) }, `upgrade refused: ${refused.reason}`);
      return;
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(JAMBONZ_SUBPROTOCOL)) {
      rejectUpgrade(socket, 400, `expected WebSocket subprotocol ${JAMBONZ_SUBPROTOCOL}`);
      log.info({ remote }, 'upgrade refused: not a jambonz socket');
      return;
    }
    if (sockets.size >= maxSockets) {
      rejectUpgrade(socket, 503, `at the limit of ${maxSockets} jambonz sockets (MAX_CALLS)`);
      log.warn({ remote, sockets: sockets.size }, 'upgrade refused: at the jambonz socket limit (MAX_CALLS)');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.once('close', () => sockets.delete(ws));
      // ws emits 'error' for a frame it cannot accept (bad opcode, invalid UTF-8, too large) and then closes the
      // socket itself; with no listener that emit throws, and the whole gateway goes down
      ws.on('error', (err) => log.warn({ err: err.message }, 'jambonz socket error: closing that socket'));
      guardServiceSocket(ws, log);
      service.handle(ws, servicePath);
    });
  });

  const port = await listenOn(server, opts.host, opts.port, 'JAMBONZ_SERVICE_HOST/JAMBONZ_SERVICE_PORT');
  log.info({ host: opts.host, port, path: servicePath }, 'jambonz service listening');
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        for (const ws of sockets) {
          ws.close(1001, 'gateway shutting down');
          setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
        }
        wss.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** The request's path exactly as sent, without its query: what the service path is compared with, unnormalised. */
function rawPathOf(req: http.IncomingMessage): string {
  const url = req.url ?? '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * node-client-ws parses a service socket's first message inside its ws 'message' listener and rethrows what fails
 * (not JSON, no type or msgid, a session message without `data`): ws runs that listener from the socket's 'data'
 * event, so the throw is an uncaughtException and the whole gateway, with every live call, goes down. The socket's
 * `emit` is wrapped (before node-client-ws adds its listener) so that
 * - until a session starts, a text message that is not a jambonz message reaches no listener, and closes only this
 *   socket (1008);
 * - anything any 'message' listener still throws closes only this socket (1011).
 * A socket that starts no session within FIRST_MESSAGE_TIMEOUT_MS is closed.
 */
function guardServiceSocket(ws: WebSocket, log: Logger): void {
  const emit = ws.emit.bind(ws) as (event: string | symbol, ...args: unknown[]) => boolean;
  let awaitingSession = true;
  const silent = setTimeout(() => shut(1008, 'no jambonz session'), FIRST_MESSAGE_TIMEOUT_MS);
  silent.unref();
  ws.once('close', () => clearTimeout(silent));

  function shut(code: number, why: string): void {
    clearTimeout(silent);
    ws.close(code, why);
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  ws.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'message') return emit(event, ...args);
    const [data, isBinary] = args as [Buffer, boolean];
    if (awaitingSession && !isBinary) {
      const checked = checkBeforeSession(data);
      if (!checked.ok) {
        log.warn({ problem: checked.problem, bytes: data.length }, 'jambonz socket closed: not a jambonz message');
        shut(1008, 'invalid jambonz message');
        return false;
      }
      if (checked.startsSession) {
        awaitingSession = false;
        clearTimeout(silent);
      }
    }
    try {
      return emit(event, ...args);
    } catch (err) {
      log.error({ err }, 'jambonz message handling failed: closing that socket');
      shut(1011, 'internal error');
      return true;
    }
  }) as WebSocket['emit'];
}

/** Whether node-client-ws's Client would throw on this message, and whether it hands the socket to a Session. */
function checkBeforeSession(data: Buffer): { ok: true; startsSession: boolean } | { ok: false; problem: string } {
  let msg: unknown;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { ok: false, problem: 'not a JSON object' };
  const { type, msgid, data: body } = msg as Record<string, unknown>;
  if (!type || !msgid) return { ok: false, problem: 'no type or msgid' };
  const startsSession = typeof type === 'string' && SESSION_TYPES.has(type);
  if (startsSession && (typeof body !== 'object' || body === null)) return { ok: false, problem: `${String(type)} without data` };
  return { ok: true, startsSession };
}

/** the first-message types lib/client.js turns into a Session (which then reads the socket, and catches its own errors) */
const SESSION_TYPES = new Set(['session:new', 'session:adulting', 'session:reconnect', 'session:redirect']);

/**
 * A jambonz call on the service path (sip-notes §3.5 option 1): the application's `env_vars` over this instance's
 * settings (jambonz/target.ts, for this session only), then a `dial` to the CCAI SIP target with the jambonz call
 * ids in headers, and an actionHook that hangs up once the dial is over. A call whose settings make no target hears
 * a sentence and is hung up, so it ends cleanly instead of waiting out the feature-server's response timeout.
 * Logs carry the env_vars *names* and the rejected values' messages only for the settings that apply here: the
 * other values include secrets marked obscure.
 */
function answerCall(session: Session, sip: PluginConfig['sip'], log: Logger): void {
  const envVars = session.env_vars;
  const call = {
    callSid: session.call_sid,
    accountSid: session.account_sid,
    applicationSid: session.application_sid,
    direction: session.direction,
    from: session.from,
    to: session.to,
    envVars: typeof envVars === 'object' && envVars !== null ? Object.keys(envVars) : [],
  };
  const source = `env_vars of jambonz application ${String(session.application_sid ?? '?')}`;
  const ids = { to: session.to, callSid: session.call_sid, accountSid: session.account_sid, applicationSid: session.application_sid };
  const resolved = resolveCcaiTarget(sip, envVars, ids, source);
  for (const problem of resolved.rejected) {
    const where = { callSid: call.callSid, applicationSid: call.applicationSid, problem };
    log.warn(where, 'jambonz env_var ignored: the instance setting applies');
  }
  watchSession(session, log);
  if (!resolved.target) {
    log.warn({ ...call, problem: resolved.problem }, 'jambonz call has no CCAI target: telling the caller and hanging up');
    session.say({ text: NO_TARGET_TEXT }).hangup({ headers: { 'X-Reason': 'no-ccai-target' } }).send();
    return;
  }
  log.info({ ...call, sipUri: resolved.target.sipUri, applied: resolved.applied }, 'jambonz call: dialling the CCAI bot');
  session.dial(dialVerb(resolved.target)).send();
}

function dialVerb(target: CcaiTarget): DialVerb {
  return {
    target: [{ type: 'sip', sipUri: target.sipUri }],
    headers: target.headers,
    actionHook: DIAL_ACTION_HOOK,
    // the caller's leg is answered when the bot answers: a bot that refuses leaves the caller unanswered, not silent
    answerOnBridge: true,
  };
}

/**
 * jambonz reopened the socket of a call in progress: the dial it was given is running, so nothing is sent again;
 * its outcome (the actionHook) may now arrive on this socket.
 */
function resumeCall(session: Session, log: Logger): void {
  log.info({ callSid: session.call_sid }, 'jambonz session reconnected');
  watchSession(session, log);
}

/**
 * The dial's outcome gets its one `reply()`: a hangup. Every listener here only logs or replies; node-client-ws's
 * Session catches (and logs) what its message handler throws, and a socket 'error' is handled in attachJambonzEndpoint.
 */
function watchSession(session: Session, log: Logger): void {
  const callSid = session.call_sid;
  session.on(DIAL_ACTION_HOOK, (data: unknown) => {
    const outcome = isObject(data) ? data : {};
    log.info(
      {
        callSid,
        dialCallStatus: outcome['dial_call_status'],
        dialSipStatus: outcome['dial_sip_status'],
        dialCallSid: outcome['dial_call_sid'],
        dialSbcCallid: outcome['dial_sbc_callid'],
        durationS: outcome['dial_call_duration'],
      },
      'jambonz dial to the CCAI bot ended: hanging up',
    );
    session.hangup().reply();
  });
  session.on('jambonz:error', (data: unknown) => log.warn({ callSid, error: data }, 'jambonz reported an error on the call'));
  session.on('close', (code: number) => log.info({ callSid, code }, 'jambonz session closed'));
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
