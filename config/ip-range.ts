import { isIP } from 'node:net';

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
