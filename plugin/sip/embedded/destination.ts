import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SipFailure } from '../errors.js';
import type { Destination, SipTransport } from './transport.js';
import { parseSipUri, type SipUri } from './uri.js';

/** RFC 3261 §19.1.2: the default ports of sip: and sips: URIs; RFC 3263 §4.2 gives TLS 5061 too */
const DEFAULT_SIP_PORT = 5060;
const DEFAULT_TLS_PORT = 5061;

export function defaultPort(protocol: SipTransport['protocol']): number {
  return protocol === 'TLS' ? DEFAULT_TLS_PORT : DEFAULT_SIP_PORT;
}

/**
 * Where to send an in-dialog request for `uri` (the dialog's remote target or its first Route): a single A/AAAA lookup
 * (dns.lookup, so /etc/hosts works) and the default port when the URI has none. The INVITE's own request-URI is
 * resolved the RFC 3263 way instead (target-resolver.ts); a dialog's hops are addresses the peer itself gave.
 * Rejects with a `transport` SipFailure.
 */
export async function resolveDestination(uri: string, transport: SipTransport): Promise<Destination> {
  const parsed = uriForTransport(uri, transport);
  return { host: await resolveHost(parsed.host, transport.family), port: parsed.port ?? defaultPort(transport.protocol) };
}

/**
 * `uri` parsed, if it may go over our transport. Deviation from RFC 3263 §4.1: a URI without `;transport=` takes ours
 * (§4.1 would pick UDP for sip:), since a bot's Contact often omits it on TCP and TLS dialogs. A URI asking for
 * another transport than ours (explicitly, or by a sips: scheme) fails instead of silently switching. Throws a
 * `transport` SipFailure.
 */
export function uriForTransport(uri: string, transport: Pick<SipTransport, 'protocol'>): SipUri {
  const parsed = parseSipUri(uri);
  if (!parsed) throw new SipFailure('transport', `not a SIP URI: ${uri}`);
  const wanted = parsed.scheme === 'sips' ? 'TLS' : (parsed.params.transport ?? transport.protocol).toUpperCase();
  if (wanted !== transport.protocol) {
    throw new SipFailure('transport', `${uri} needs transport ${wanted}, but this SIP backend runs ${transport.protocol}`);
  }
  return parsed;
}

/**
 * The address of a URI's host, looked up as resolveDestination does whatever the URI's transport: a dialog's peer
 * is every host its Contact and Record-Route name (../dialog-peer.ts). Rejects with a `transport` SipFailure.
 */
export async function resolveUriHost(uri: string, family: 4 | 6): Promise<string> {
  const parsed = parseSipUri(uri);
  if (!parsed) throw new SipFailure('transport', `not a SIP URI: ${uri}`);
  return resolveHost(parsed.host, family);
}

async function resolveHost(uriHost: string, family: 4 | 6): Promise<string> {
  const host = uriHost.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) return host;
  try {
    return (await lookup(host, { family })).address;
  } catch (err) {
    throw new SipFailure('transport', `DNS lookup of ${host} failed: ${(err as Error).message}`);
  }
}
