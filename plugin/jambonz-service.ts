import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { requireQuietly } from '../config/quiet-require.js';
import type { PluginConfig } from '../config/schema.js';
import { resolveCcaiTarget, type CcaiTarget } from './jambonz-target.js';
import { pathnameOf, rejectUpgrade } from './upgrade-refusal.js';

// @jambonz/node-client-ws 0.2.13 is CommonJS without typings: only what this file calls, as read from its index.js,
// lib/client.js and lib/session.js.
interface ExternalWss {
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, done: (ws: WebSocket) => void): void;
  emit(event: string, ...args: unknown[]): boolean;
}
type Middleware = (req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => void;
interface ServiceClient extends EventEmitter {
  /** index.js calls this with each upgraded service socket; it adds the listener that reads the first message */
  handle(ws: WebSocket, path: string): void;
}
interface Session extends EventEmitter {
  call_sid?: string;
  msgid: string;
  /** every field of session:new `data` is also copied onto the session */
  [field: string]: unknown;
  say(payload: { text: string }): Session;
  hangup(payload?: { headers?: Record<string, string> }): Session;
  dial(payload: DialVerb): Session;
  send(opts?: { execImmediate?: boolean }): void;
  /** acks the last `verb:hook` with the verbs added since: once in every actionHook handler */
  reply(opts?: { execImmediate?: boolean }): void;
}
/** the part of verb-specifications `dial` this file sends */
interface DialVerb {
  target: Array<{ type: 'sip'; sipUri: string }>;
  headers: Record<string, string>;
  actionHook: string;
  answerOnBridge: boolean;
}
type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>;
interface NodeClientWs {
  createEndpoint(opts: {
    /** index.js only calls `server.on('upgrade', async listener)` (and `listen` when given a port, which we never do) */
    server: { on(event: string, listener: UpgradeListener): unknown };
    logger: Pick<Logger, 'info' | 'error' | 'debug'>;
    middlewares: Middleware[];
    externalWss: Array<{ path: string; wss: ExternalWss }>;
  }): (service: { path: string }) => ServiceClient;
}

// The index requires lib/utils/validator.js, which console.logs when first loaded; config/app-json.ts has usually
// loaded it already, but stdout must stay pure JSON logs whatever the import order.
const { createEndpoint } = requireQuietly<NodeClientWs>('@jambonz/node-client-ws');

/** the WebSocket subprotocol jambonz offers, and the only one node-client-ws accepts */
export const JAMBONZ_SUBPROTOCOL = 'ws.jambonz.org';

/** jambonz sends session:new as soon as its socket opens (feature-server ws-requestor); a silent socket is not jambonz */
const FIRST_MESSAGE_TIMEOUT_MS = 10_000;
/** on shutdown, how long a service socket has to answer our close before it is cut */
const CLOSE_GRACE_MS = 1_000;

/** What a jambonz call hears, before we hang up, when its settings make no CCAI target to dial. */
export const NO_TARGET_TEXT = 'This call cannot be connected to the virtual agent. Goodbye.';

/** the actionHook of our `dial`: jambonz sends the dial's outcome back on the session's socket as a `verb:hook` */
export const DIAL_ACTION_HOOK = '/ccai-dial-done';

/** The handler of one exact pathname (query ignored), which node-client-ws delegates to before any of its own code. */
export interface PathUpgrades {
  path: string;
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface JambonzEndpointOptions {
  server: http.Server;
  log: Logger;
  /** where jambonz connects (subprotocol ws.jambonz.org); '' = no service, every other upgrade gets 404 */
  servicePath: string;
  /** exact pathnames (query ignored) that bypass node-client-ws: the Talkdesk routes */
  routes: PathUpgrades[];
  /** this instance's SIP settings: where a jambonz call on the service path is dialled (its env_vars over them) */
  sip: PluginConfig['sip'];
}

export interface JambonzEndpoint {
  /** `pathname` is the service path (with or without a trailing slash) */
  isServicePath(pathname: string): boolean;
  /** close every open service socket (1001); the server's close waits for them */
  close(): void;
}

/**
 * node-client-ws on our HTTP(S) server. Each upgrade is answered by exactly one of:
 * - a Talkdesk route, by exact pathname (node-client-ws `externalWss`), which authenticates before upgrading;
 * - our middleware, which refuses any path but the service path with 404, and a service upgrade without the
 *   ws.jambonz.org subprotocol with 400, in the same plain-text shape as the Talkdesk refusals;
 * - node-client-ws itself, for the service path.
 * node-client-ws's 'upgrade' listener is async and has no catch: whatever throws in it is an unhandled rejection,
 * which ends the process with every live call. One client can cause that: a GET pipelined before an upgrade on
 * the same connection makes its `res.assignSocket(socket)` throw ERR_HTTP_SOCKET_ASSIGNED. So `createEndpoint` is
 * given a stand-in server that only collects that listener, and the real server's one 'upgrade' listener is ours:
 * it runs node-client-ws's and closes the connection of an upgrade that fails. For the same reason the middleware
 * never calls `next(err)`.
 */
export function attachJambonzEndpoint(opts: JambonzEndpointOptions): JambonzEndpoint {
  const { server, servicePath } = opts;
  const log = opts.log.child({ component: 'jambonz' });
  const servicePaths = new Set(servicePath === '' ? [] : [servicePath, servicePath.endsWith('/') ? servicePath.slice(0, -1) : `${servicePath}/`]);
  const sockets = new Set<WebSocket>();

  const serviceUpgradeGate: Middleware = (req, _res, next) => {
    const socket = req.socket;
    const path = pathnameOf(req);
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (!servicePaths.has(path)) {
      rejectUpgrade(socket, 404, 'unknown path');
      log.info({ remote, path }, 'upgrade refused: unknown path');
      return;
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(JAMBONZ_SUBPROTOCOL)) {
      rejectUpgrade(socket, 400, `expected WebSocket subprotocol ${JAMBONZ_SUBPROTOCOL}`);
      log.info({ remote, path }, 'upgrade refused: not a jambonz socket');
      return;
    }
    next();
  };

  const upgradeListeners: UpgradeListener[] = [];
  const makeService = createEndpoint({
    server: { on: (event, listener) => event === 'upgrade' && upgradeListeners.push(listener) },
    logger: log,
    middlewares: [serviceUpgradeGate],
    externalWss: opts.routes.map((route) => ({ path: route.path, wss: asExternalWss(route) })),
  });
  const [routeUpgrade] = upgradeListeners;
  if (upgradeListeners.length !== 1 || !routeUpgrade) {
    throw new Error(`@jambonz/node-client-ws added ${upgradeListeners.length} upgrade listeners, not 1: this plugin is written for 0.2.13`);
  }
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'upgrade socket error'));
    routeUpgrade(req, socket, head).catch((err: Error) => {
      log.warn({ err: err.message, path: pathnameOf(req) }, 'upgrade failed: connection closed');
      socket.destroy();
    });
  });

  if (servicePath !== '') {
    const service = makeService({ path: servicePath });
    const handle = service.handle.bind(service);
    service.handle = (ws, path) => {
      sockets.add(ws);
      ws.once('close', () => sockets.delete(ws));
      // ws emits 'error' for a frame it cannot accept (bad opcode, invalid UTF-8, too large) and then closes the
      // socket itself; with no listener that emit throws, and the whole gateway goes down
      ws.on('error', (err) => log.warn({ err: err.message }, 'jambonz socket error: closing that socket'));
      guardServiceSocket(ws, log);
      handle(ws, path);
    };
    service.on('session:new', (session: Session) => answerCall(session, opts.sip, log));
    service.on('session:reconnect', (session: Session) => resumeCall(session, log));
  }

  return {
    isServicePath: (pathname) => servicePaths.has(pathname),
    close: () => {
      for (const ws of sockets) {
        ws.close(1001, 'gateway shutting down');
        setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
      }
    },
  };
}

/**
 * node-client-ws hands a delegated upgrade to `wss.handleUpgrade(req, socket, head, cb)` and expects `cb(ws)` to
 * emit 'connection'. Our route reports its sockets itself, with what it authenticated, so `cb` and `emit` go unused.
 */
function asExternalWss(route: PathUpgrades): ExternalWss {
  return {
    handleUpgrade: (req, socket, head) => route.handleUpgrade(req, socket, head),
    emit: () => false,
  };
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
 * settings (jambonz-target.ts, for this session only), then a `dial` to the CCAI SIP target with the jambonz call
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
