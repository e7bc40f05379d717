import type { PluginConfig, TalkdeskField } from '../../config/schema.js';

/**
 * Where and with what the INVITE goes. The request-URI follows jambonz's carrier form
 * `<scheme>:<user>@<host>[:<port>];transport=<t>` (sip-notes §1.4): an explicit transport parameter is what makes
 * drachtio-server pick the right transport, and it costs the embedded UAC nothing. Without CCAI_SIP_PORT the URI names
 * no port, so the host is looked up by NAPTR/SRV (RFC 3263 §4.2; a port would skip SRV). `sips:` (CCAI_SIP_SCHEME)
 * asks for TLS on every hop (RFC 3261 §19.1.1); the config allows it only with the tls transport.
 */
export function requestUri(sipuri: string, sip: PluginConfig['sip']): string {
  return `${sip.ccaiScheme}:${escapeUser(sipuri)}@${hostPort(sip.ccaiHost, sip.ccaiPort)};transport=${sip.ccaiTransport}`;
}

/** `host:port`, or the host alone when no port is set */
export function hostPort(host: string, port: number | undefined): string {
  return port === undefined ? host : `${host}:${port}`;
}

/**
 * RFC 3261 `unreserved` (alphanum and `-_.!~*'()`) plus `+`, which every E.164 number starts with: `+` is reserved,
 * so `%2B` would name another user (§19.1.4), and it can open neither a parameter nor a header.
 */
const USER_AS_IS = /^[A-Za-z0-9\-_.!~*'()+]$/;

/**
 * The user part as the request-URI carries it: every other byte percent-escaped. The grammar lets `;`, `?`, `&`, `=`
 * stand unescaped in a user part, but a parser that splits at the first `;` or `?` would read
 * `+1734;maddr=203.0.113.9` as a maddr parameter and send the call elsewhere (issue 13); escaped, no parser can.
 */
function escapeUser(user: string): string {
  let escaped = '';
  for (const byte of Buffer.from(user, 'utf8')) {
    const char = String.fromCharCode(byte);
    escaped += USER_AS_IS.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return escaped;
}

/** Header values come from Talkdesk (and the URL): anything that could break a header line is removed. */
const UNSAFE_IN_HEADER = /[\x00-\x1f\x7f]/g;

export function talkdeskHeaders(
  mapping: PluginConfig['sip']['headers'],
  values: Partial<Record<TalkdeskField, string>>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, field] of Object.entries(mapping)) {
    const value = values[field]?.replace(UNSAFE_IN_HEADER, '');
    if (value) headers[name] = value;
  }
  return headers;
}
