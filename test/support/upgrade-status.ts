import WebSocket from 'ws';

/**
 * The HTTP status a WebSocket upgrade gets: 101 when it becomes a WebSocket (closed again at once), else the refusal's
 * status. Rejects when no HTTP answer comes at all (e.g. plain text to a TLS listener).
 */
export function upgradeStatus(url: string, opts: WebSocket.ClientOptions = {}, protocol?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol, opts);
    ws.once('error', reject);
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
  });
}
