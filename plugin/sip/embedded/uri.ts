import type { Params } from './header-fields.js';
import { parseParams } from './header-fields.js';

/** The parts of a SIP URI (RFC 3261 §19.1.1) the UA needs to route and to build From/To. */
export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  readonly user?: string;
  /** IPv6 references keep their brackets */
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
}

const SIP_URI = /^(sips?):(?:([^@]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:;?@\s]+)(?::(\d{1,5}))?((?:;[^?]*)?)(?:\?.*)?$/i;

export function parseSipUri(uri: string): SipUri | undefined {
  const m = SIP_URI.exec(uri.trim());
  if (!m) return undefined;
  return {
    scheme: m[1]!.toLowerCase() as 'sip' | 'sips',
    ...(m[2] ? { user: m[2] } : {}),
    host: m[3]!,
    ...(m[4] ? { port: Number(m[4]) } : {}),
    params: parseParams(m[5] ?? ''),
  };
}

/** scheme:user@host:port, without uri-parameters or headers (§19.1.4: what a To/From URI should carry). */
export function uriWithoutParams(uri: SipUri): string {
  return `${uri.scheme}:${uri.user ? `${uri.user}@` : ''}${uri.host}${uri.port ? `:${uri.port}` : ''}`;
}
