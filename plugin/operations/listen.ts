import type { Server } from 'node:net';

/**
 * Listens on `host:port` and resolves with the port bound (the one picked for port 0), or rejects with a message that
 * names the settings at fault (`settings`, e.g. "METRICS_HOST/METRICS_PORT"), so start-up fails saying what to fix.
 */
export function listenOn(server: Server, host: string, port: number, settings: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${host}:${port} (${settings}): ${err.code ?? err.message}`)));
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
