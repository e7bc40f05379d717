import http from 'node:http';
import type { Logger } from 'pino';
import type { Readiness } from './admission.js';
import { listenOn } from './listen.js';
import type { GatewayMetrics } from './metrics.js';
import { pathnameOf } from '../talkdesk/upgrade-refusal.js';

export interface MetricsServer {
  /** the port actually bound (METRICS_PORT 0 picks one) */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * GET /metrics on a listener of its own (METRICS_HOST/METRICS_PORT), so Prometheus scrapes a private address while
 * Talkdesk reaches the public one; /health and /ready are served here too, for probes that live on that side.
 */
export async function startMetricsServer(opts: {
  host: string;
  port: number;
  metrics: GatewayMetrics;
  readiness: () => Readiness;
  log: Logger;
}): Promise<MetricsServer> {
  const { metrics, readiness, log } = opts;
  const server = http.createServer((req, res) => {
    const path = pathnameOf(req);
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' }).end('GET only\n');
      return;
    }
    if (path === '/metrics') {
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (err: unknown) => {
          log.error({ err }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
        },
      );
      return;
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/ready') {
      const ready = readiness();
      res.writeHead(ready.status, { 'content-type': 'text/plain' }).end(`${ready.reason}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  const port = await listenOn(server, opts.host, opts.port, 'METRICS_HOST/METRICS_PORT');
  log.info({ host: opts.host, port }, 'metrics listening: GET /metrics, /health, /ready');
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
