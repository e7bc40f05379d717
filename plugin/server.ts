import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { PluginConfig } from '../config/schema.js';
import { authenticateUpgrade, type AuthenticatedUpgrade } from './auth.js';

/** Kore's docs use the trailing slash, its flow export does not (protocol notes §1): both are the same route. */
const TALKDESK_PATHS = new Set(['/audiosocket/talkdesk', '/audiosocket/talkdesk/']);

export interface TalkdeskServer {
  listen(): Promise<number>;
  /** stop accepting; live sockets are the calls' to close */
  close(): Promise<void>;
}

/**
 * The HTTP(S) front: Talkdesk upgrades are authenticated before the upgrade completes, so a bad token costs one
 * HTTP response and never a call, a port or a SIP transaction.
 */
export function createTalkdeskServer(
  config: PluginConfig,
  log: Logger,
  onStream: (ws: WebSocket, upgrade: AuthenticatedUpgrade) => void,
): TalkdeskServer {
  const { listen } = config;
  const server =
    listen.tlsCertFile && listen.tlsKeyFile
      ? https.createServer({ cert: readFileSync(listen.tlsCertFile), key: readFileSync(listen.tlsKeyFile) })
      : http.createServer();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.talkdesk.maxFrameBytes, // larger frames: ws closes with 1009
    perMessageDeflate: false, // 20 ms audio frames are base64 noise: compression costs CPU and saves nothing
  });

  server.on('request', (req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'upgrade socket error'));
    const url = new URL(req.url ?? '/', 'http://localhost');
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    if (!TALKDESK_PATHS.has(url.pathname)) {
      rejectUpgrade(socket, 404, 'unknown path');
      log.info({ remote, path: url.pathname }, 'upgrade refused: unknown path');
      return;
    }
    const auth = authenticateUpgrade(url.searchParams, config.bots);
    if (!auth.ok) {
      rejectUpgrade(socket, auth.status, auth.reason);
      log.warn({ remote, status: auth.status, reason: auth.reason, botId: url.searchParams.get('botId') }, 'upgrade refused');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onStream(ws, auth));
  });

  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          reject(new Error(`cannot listen on ${listen.host}:${listen.port} (LISTEN_HOST/LISTEN_PORT): ${err.code ?? err.message}`)),
        );
        server.listen(listen.port, listen.host, () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : listen.port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        wss.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function rejectUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
