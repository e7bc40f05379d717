import type { PluginConfig, TalkdeskField } from '../../config/schema.js';

/**
 * Where and with what the INVITE goes. The request-URI follows jambonz's carrier form
 * `<scheme>:<user>@<host>:<port>;transport=<t>` (sip-notes §1.4): an explicit transport parameter is what makes
 * drachtio-server pick the right transport, and it costs the embedded UAC nothing. `sips:` (CCAI_SIP_SCHEME) asks
 * for TLS on every hop (RFC 3261 §19.1.1); the config allows it only with the tls transport.
 */
export function requestUri(sipuri: string, sip: PluginConfig['sip']): string {
  return `${sip.ccaiScheme}:${sipuri}@${sip.ccaiHost}:${sip.ccaiPort};transport=${sip.ccaiTransport}`;
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
