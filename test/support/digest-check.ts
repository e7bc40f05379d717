import { createHash } from 'node:crypto';

/**
 * What a server computes to check a digest answer (RFC 2617 §3.2.2, RFC 7616 for SHA-256), from the fields the
 * Authorization or Proxy-Authorization value carries: independent of plugin/sip/digest.ts, so a test can hold it to
 * the RFC rather than to itself.
 */
export function digestVerifies(header: string, method: string, password: string): boolean {
  const f = Object.fromEntries([...header.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]+))/g)].map((m) => [m[1]!, m[2] ?? m[3]!]));
  const h = (s: string): string => createHash(f['algorithm']?.startsWith('SHA-256') ? 'sha256' : 'md5').update(s).digest('hex');
  const ha1 = h(`${f['username']}:${f['realm']}:${password}`);
  const ha2 = h(`${method}:${f['uri']}`);
  const expected = f['qop'] ? h(`${ha1}:${f['nonce']}:${f['nc']}:${f['cnonce']}:${f['qop']}:${ha2}`) : h(`${ha1}:${f['nonce']}:${ha2}`);
  return f['response'] === expected;
}
