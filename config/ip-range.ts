import { BlockList, isIP } from 'node:net';

/** An IP address, or a CIDR range such as 10.0.0.0/8 or fd00::/8; `ok: false` for anything else. */
export type IpRange = { ok: true; address: string; prefix?: number; family: 'ipv4' | 'ipv6' } | { ok: false };

export function parseIpRange(text: string): IpRange {
  const [address = '', prefixText, ...rest] = text.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return { ok: false };
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) return { ok: true, address, family };
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > (version === 4 ? 32 : 128)) return { ok: false };
  return { ok: true, address, prefix, family };
}

/**
 * Whether an address falls in one of `ranges` (addresses and CIDR ranges, as parseIpRange reads them), built once at
 * start: config/load.ts has already refused entries that do not parse, so any left here are skipped. An IPv4 peer
 * on a dual-stack socket (`::ffff:192.0.2.1`) matches as the IPv4 address it is. Used for TRUSTED_PROXIES and
 * CCAI_SOURCE_ADDRESSES.
 */
export function ipRangeMatcher(ranges: readonly string[]): (address: string) => boolean {
  if (ranges.length === 0) return () => false;
  const list = new BlockList();
  for (const text of ranges) {
    const entry = parseIpRange(text);
    if (!entry.ok) continue;
    if (entry.prefix === undefined) list.addAddress(entry.address, entry.family);
    else list.addSubnet(entry.address, entry.prefix, entry.family);
  }
  return (address) => {
    const plain = unmapped(address);
    const version = isIP(plain);
    return version !== 0 && list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `::ffff:192.0.2.1` (an IPv4 peer on a dual-stack socket) as the IPv4 address it is; any other address as is */
export function unmapped(address: string): string {
  return /^::ffff:/i.test(address) && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
