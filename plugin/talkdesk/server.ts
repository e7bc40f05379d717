import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { PluginConfig } from '../../config/schema.js';
import type { AdmissionRefusal, Readiness } from '../operations/admission.js';
import { authenticateUpgrade, type AuthenticatedUpgrade, type AuthFailureCause } from './auth.js';
import { AuthRateLimiter, type AuthRateLimitOptions } from './auth-rate-limit.js';
import { clientAddressOf } from './client-address.js';
import { listenOn } from '../operations/listen.js';
import { CERT_RELOAD_DEBOUNCE_MS, CertificateReloader, readCertificatePair, type CertificateReload } from './tls-reload.js';
import { pathnameOf, rejectUpgrade } from './upgrade-refusal.js';

/** The Voice Stream URL's path as Kore's docs write it (protocol notes §1, §6) */
export const TALKDESK_PATH = '/audiosocket/talkdesk/';
/** its flow export leaves the trailing slash out: both are the same route */
const TALKDESK_PATHS = [TALKDESK_PATH.slice(0, -1), TALKDESK_PATH];

/**
 * How long a client may take over one HTTP request on the internet-facing port, upgrades included. Constants, not
 * settings: Talkdesk's upgrade is one small GET sent at once, so these only ever cut off clients that trickle bytes
 * (slowloris) or connect and send nothing. A WebSocket is not subject to them once upgraded (ws clears the socket
 * timeout); the Talkdesk-side media timeouts take over there.
 */
export interface HttpLimits {
  /** from the TCP accept (or the previous request on a keep-alive connection) to the end of the request headers */
  headersTimeoutMs: number;
  /** to the end of the whole request */
  requestTimeoutMs: number;
  /** how often Node checks the two above: the bound is the timeout plus up to this */
  checkIntervalMs: number;
  /**
   * With TLS_CERT_FILE: from the TCP accept to the end of the TLS handshake. The two above start only once the
   * handshake is done, so this is what bounds a client that connects and sends nothing, or part of a ClientHello.
   * Node's default is 120 s; a real client (Talkdesk, a load balancer's probe) finishes in one or two round trips.
   * Node times it from the accept, not from the last byte: trickling a ClientHello does not extend it.
   */
  tlsHandshakeTimeoutMs: number;
}

export const HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  checkIntervalMs: 1_000,
  tlsHandshakeTimeoutMs: 10_000,
};

export interface TalkdeskServer {
  listen(): Promise<number>;
  /** stop accepting; live Talkdesk sockets are the calls' to close */
  close(): Promise<void>;
  /**
   * Re-read TLS_CERT_FILE/TLS_KEY_FILE (SIGHUP); the files are also watched. New connections get the new pair, live
   * ones keep theirs; a pair that does not load leaves the current one in place. Without TLS there is nothing to do.
   */
  reloadCertificate(trigger?: string): Promise<CertificateReload>;
}

export interface TalkdeskServerOptions {
  /**
   * Asked for every Talkdesk upgrade before it is authenticated: a refusal (draining, at the call cap, SIP backend
   * down) answers 503 with its reason, before any call exists. `readiness` answers GET /ready.
   */
  admission?: { refusal(): AdmissionRefusal | undefined; readiness(): Readiness };
  /** what the metrics count: upgrades refused by admission (cause) and by authentication (reason), TLS reloads */
  onUpgradeRefused?(cause: AdmissionRefusal['cause']): void;
  onAuthFailure?(cause: AuthFailureCause): void;
  onTlsReload?(result: CertificateReload): void;
  /** tests shorten these; production uses HTTP_LIMITS and AUTH_RATE_LIMIT_DEFAULTS */
  httpLimits?: Partial<HttpLimits>;
  authRateLimit?: Partial<AuthRateLimitOptions>;
}

/**
 * The internet-facing HTTP(S) front: Talkdesk upgrades are authenticated before the upgrade completes, so a bad
 * token costs one HTTP response and never a call, a port or a SIP transaction. Every other upgrade gets 404, and
 * only /health and /ready answer requests: the jambonz service has a private listener of its own
 * (jambonz/service.ts).
 */
export function createTalkdeskServer(
  config: PluginConfig,
  log: Logger,
  onStream: (ws: WebSocket, upgrade: AuthenticatedUpgrade) => void,
  options: TalkdeskServerOptions = {},
): TalkdeskServer {
  const { listen } = config;
  const limits = { ...HTTP_LIMITS, ...options.httpLimits };
  const httpOptions: http.ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
  const authFailures = new AuthRateLimiter(options.authRateLimit);
  const clientOf = clientAddressOf(listen.trustedProxies);
  let server: http.Server;
  let tls: CertificateReloader | undefined;
  if (listen.tlsCertFile && listen.tlsKeyFile) {
    const files = { certFile: listen.tlsCertFile, keyFile: listen.tlsKeyFile };
    const pair = readCertificatePair(files);
    // a handshake that times out is a tlsClientError: https.Server destroys the socket (no clientError listener here)
    const secure = https.createServer({ ...pair, ...httpOptions, handshakeTimeout: limits.tlsHandshakeTimeoutMs });
    tls = new CertificateReloader(secure, files, pair, log.child({ component: 'tls' }), CERT_RELOAD_DEBOUNCE_MS, (result) =>
      options.onTlsReload?.(result),
    );
    server = secure;
  } else {
    server = http.createServer(httpOptions);
  }
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.talkdesk.maxFrameBytes, // larger frames: ws closes with 1009
    perMessageDeflate: false, // 20 ms audio frames are base64 noise: compression costs CPU and saves nothing
  });

  const talkdesk = {
    handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      // the rate limit's key: behind a trusted proxy, the client it forwarded for
      const client = clientOf(req);
      // before the JWT check: a full or draining instance spends nothing on the stream, the balancer retries elsewhere
      const refusal = options.admission?.refusal();
      if (refusal) {
        rejectUpgrade(socket, refusal.status, refusal.reason);
        log.warn({ remote, status: refusal.status, reason: refusal.reason, cause: refusal.cause }, 'upgrade refused');
        options.onUpgradeRefused?.(refusal.cause);
        return;
      }
      // a source that keeps failing is refused before its token costs an HMAC; one log line when the block starts
      const blockedMs = authFailures.blockedFor(client);
      if (blockedMs > 0) {
        rejectUpgrade(socket, 429, 'too many failed authentications from this address: try later', {
          'Retry-After': String(Math.ceil(blockedMs / 1000)),
        });
        options.onAuthFailure?.('rate-limited');
        return;
      }
      const auth = authenticateUpgrade(url.searchParams, config.bots);
      if (!auth.ok) {
        rejectUpgrade(socket, auth.status, auth.reason);
        log.warn({ remote, client, status: auth.status, cause: auth.cause, reason: auth.reason, botId: url.searchParams.get('botId') }, 'upgrade refused');
        options.onAuthFailure?.(auth.cause);
        if (authFailures.recordFailure(client)) {
          log.warn({ remote, client }, 'too many failed authentications: address refused for a while');
        }
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => onStream(ws, auth));
    },
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'upgrade socket error'));
    const path = pathnameOf(req);
    if (TALKDESK_PATHS.includes(path)) {
      talkdesk.handleUpgrade(req, socket, head);
      return;
    }
    rejectUpgrade(socket, 404, 'unknown path');
    log.info({ remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`, path }, 'upgrade refused: unknown path');
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = pathnameOf(req);
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    // what a load balancer health-checks: 200 take calls, 429 at the cap, 503 draining or SIP backend down
    if (req.method === 'GET' && path === '/ready' && options.admission) {
      const ready = options.admission.readiness();
      res.writeHead(ready.status, { 'content-type': 'text/plain' }).end(`${ready.reason}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

  if (tls) tls.watch();

  return {
    listen: () => listenOn(server, listen.host, listen.port, 'LISTEN_HOST/LISTEN_PORT'),
    close: () =>
      new Promise((resolve) => {
        tls?.close();
        wss.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    reloadCertificate: (trigger = 'request') =>
      tls
        ? tls.reload(trigger)
        : Promise.resolve({ ok: false, reason: 'no TLS_CERT_FILE/TLS_KEY_FILE: this server speaks plain ws://' }),
  };
}
