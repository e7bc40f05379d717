import { BlockList, isIP } from 'node:net';

export type AddressScope = 'loopback' | 'private' | 'public';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** RFC 1918, RFC 6598 (carrier-grade NAT), link-local (RFC 3927, RFC 4291) and IPv6 unique local (RFC 4193) */
const PRIVATE = new BlockList();
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('100.64.0.0', 10, 'ipv4');
PRIVATE.addSubnet('169.254.0.0', 16, 'ipv4');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fe80::', 10, 'ipv6');

/** Whether an IP address is reachable only from this host, only from a private network, or from the internet. */
export function addressScope(ip: string): AddressScope {
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (LOOPBACK.check(ip, family)) return 'loopback';
  return PRIVATE.check(ip, family) ? 'private' : 'public';
}

/** a wildcard (every interface) or a public address: a listener there can be reached from outside */
export function isPublicListener(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::' || addressScope(ip) === 'public';
}
