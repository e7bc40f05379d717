import http from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Answer a WebSocket upgrade request with a plain HTTP error and close: the refused client gets a status and a
 * one-line reason, and no WebSocket code ever runs for it.
 */
export function rejectUpgrade(socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void {
  const body = `${reason}\n`;
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

/** The request's path without query, as the Talkdesk routes and the jambonz service path compare it. */
export function pathnameOf(req: http.IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://localhost').pathname;
}
