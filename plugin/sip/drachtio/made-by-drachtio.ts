import type Srf from 'drachtio-srf/lib/srf.js';

/**
 * Whether drachtio-server made this response itself instead of relaying the bot's. A request it could not send (a
 * TCP/TLS connection refused, no such host) comes back as a 503 framed `sip|network|0|<proto>||0|…`: no size, no
 * source address, port 0 (measured on drachtio-server v0.9.10, issue 13). That is a transport failure, as the
 * embedded backend reports its own, not an answer of the bot.
 */
export function madeByDrachtio(res: Pick<Srf.Response, 'source_address' | 'source_port'> | undefined): boolean {
  return res !== undefined && !res.source_address && !res.source_port;
}
