import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { ipRangeMatcher, unmapped } from '../../config/ip-range.js';

export { unmapped };

/**
 * Who sent a request: the socket's peer, or, when that peer is a proxy we were told to trust (TRUSTED_PROXIES), the
 * client it names in X-Forwarded-For. Behind HAProxy every client would otherwise share the proxy's address, and one
 * bad token sender would get the whole gateway refused by the auth rate limit.
 *
 * Each proxy appends the address it received the request from, so the list is read from the right: the first address
 * that is not a trusted proxy is the client; whatever stands to its left was written by the client and is not
 * believed. An entry that is not an IP address ends the walk at the last hop we could trust.
 */
export type ClientAddress = (req: IncomingMessage) => string;

/** Built once at start (TRUSTED_PROXIES is validated by config/load.ts); per request it costs a header split. */
export function clientAddressOf(trustedProxies: readonly string[]): ClientAddress {
  const peer = (req: IncomingMessage): string => unmapped(req.socket.remoteAddress ?? '');
  if (trustedProxies.length === 0) return peer;
  const isTrusted = ipRangeMatcher(trustedProxies);
  return (req) => {
    let client = peer(req);
    if (!isTrusted(client)) return client;
    const forwarded = req.headers['x-forwarded-for'];
    if (typeof forwarded !== 'string') return client;
    const hops = forwarded.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmapped(hops[i]!.trim());
      if (isIP(hop) === 0) return client;
      client = hop;
      if (!isTrusted(hop)) return hop;
    }
    return client;
  };
}
