import type { NaptrRecord, SrvRecord } from 'node:dns';

/** RFC 3263 §4.1 NAPTR services, by the one transport the backend runs (`sips:` URIs always use TLS) */
const NAPTR_SERVICE = { UDP: 'SIP+D2U', TCP: 'SIP+D2T', TLS: 'SIPS+D2T' } as const;
/** RFC 3263 §4.1: the SRV name to query when a domain publishes no NAPTR for us */
const SRV_PREFIX = { UDP: '_sip._udp', TCP: '_sip._tcp', TLS: '_sips._tcp' } as const;

export type SipProtocol = keyof typeof NAPTR_SERVICE;

/**
 * The SRV names a domain's NAPTR records give our transport, best first (RFC 3403 §4.1: by order, then preference).
 * Only the records of our service with flag "s" (RFC 3263 §4.1: the next lookup is SRV) count; the rest name other
 * transports or lookups this UAC does not do.
 */
export function srvNamesFromNaptr(records: readonly NaptrRecord[], protocol: SipProtocol): string[] {
  const service = NAPTR_SERVICE[protocol];
  return records
    .filter((r) => r.service.toUpperCase() === service && r.flags.toLowerCase() === 's' && r.replacement !== '')
    .sort((a, b) => a.order - b.order || a.preference - b.preference)
    .map((r) => r.replacement);
}

/** The SRV name to query without NAPTR (RFC 3263 §4.1, last paragraph): `_sip._udp.<domain>` and its siblings. */
export function defaultSrvName(domain: string, protocol: SipProtocol): string {
  return `${SRV_PREFIX[protocol]}.${domain}`;
}

/**
 * SRV targets in the order to try them (RFC 2782, "Usage rules"): lowest priority first; within a priority, each
 * next one drawn at random with a chance proportional to its weight, weight-0 records first in the running sum so that
 * they are picked rarely but not never. `random` returns [0, 1) (Math.random; a seeded one in tests). A single record
 * whose target is "." says the service is not offered here: no targets.
 */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) return [];
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  return priorities.flatMap((priority) => {
    // weight 0 first, as RFC 2782 says, otherwise in the order given
    const left = records.filter((r) => r.priority === priority).sort((a, b) => Number(a.weight !== 0) - Number(b.weight !== 0));
    const ordered: SrvRecord[] = [];
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      // RFC 2782: a whole number in [0, total]; the first record whose running sum reaches it
      const draw = Math.floor(random() * (total + 1));
      let running = 0;
      const index = left.findIndex((r) => (running += r.weight) >= draw);
      ordered.push(...left.splice(index, 1));
    }
    return ordered;
  });
}
