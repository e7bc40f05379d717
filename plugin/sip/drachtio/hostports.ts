import type { SipTransport } from '../../../config/schema.js';

/**
 * drachtio-server announces its SIP transports when we authenticate, as a CSV of `<proto>/<address>:<port>`,
 * e.g. `udp/10.0.0.5:5060,tcp/10.0.0.5:5060,tls/10.0.0.5:5061` (sip-notes §1.2). It picks the transport of an
 * INVITE by the request-URI's `;transport=` (§1.4) and refuses one it has not bound, so we check at start.
 */
export function hostportProtocols(hostport: string): Set<string> {
  const protocols = new Set<string>();
  for (const entry of hostport.split(',')) {
    const slash = entry.indexOf('/');
    if (slash > 0) protocols.add(entry.slice(0, slash).trim().toLowerCase());
  }
  return protocols;
}

export function hasTransport(hostport: string, transport: SipTransport): boolean {
  return hostportProtocols(hostport).has(transport);
}

/** The start-up error for a drachtio-server without our transport: what it has, and what to bind. */
export function missingTransportHelp(where: string, hostport: string, transport: SipTransport): string {
  const bind =
    transport === 'tls'
      ? 'a `<contact>sips:*:5061;transport=tls</contact>` plus `<tls><key-file/><cert-file/></tls>` in drachtio.conf.xml (or --contact and --key-file/--cert-file)'
      : `a \`<contact>sip:*:5060;transport=${transport}</contact>\` in drachtio.conf.xml (or --contact)`;
  return (
    `${where} has no ${transport} SIP transport (it offers ${hostport || 'none'}), and CCAI_SIP_TRANSPORT=${transport} needs one: ` +
    `bind ${bind}, or change CCAI_SIP_TRANSPORT`
  );
}
