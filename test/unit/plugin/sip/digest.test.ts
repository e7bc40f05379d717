import { describe, expect, it } from 'vitest';
import { authorization, parseChallenge, type DigestChallenge } from '../../../../plugin/sip/digest.js';

function challengeOf(value: string): DigestChallenge {
  const parsed = parseChallenge(value);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.challenge;
}

const responseOf = (header: string): string | undefined => /response="([0-9a-f]+)"/.exec(header)?.[1];

describe('SIP digest, the client side', () => {
  it('RFC 2617 §3.5: MD5, qop=auth', () => {
    const challenge = challengeOf(
      'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    );
    const header = authorization(challenge, { username: 'Mufasa', password: 'Circle Of Life' }, { method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: '0a4f113b' });
    expect(responseOf(header)).toBe('6629fae49393a05397450978507c4ef1');
    expect(header).toContain('qop=auth, nc=00000001, cnonce="0a4f113b"');
    expect(header).toContain('opaque="5ccc069c403ebaf9f0171e9517f40e41"');
  });

  it('RFC 7616 §3.9.1: SHA-256 is taken over MD5 when both are offered, and both answer as the RFC says', () => {
    const offered =
      'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", ' +
      'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"';
    const sha = challengeOf(offered);
    expect(sha.algorithm).toBe('SHA-256');
    const request = { method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ' };
    const creds = { username: 'Mufasa', password: 'Circle of Life' };
    expect(responseOf(authorization(sha, creds, request))).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
    expect(responseOf(authorization({ ...sha, algorithm: 'MD5' }, creds, request))).toBe('8ca523f5e9506fed4657c9700eebdbec');
  });

  it('an RFC 2069 challenge (no qop) is answered without nc or cnonce; stale=true is read', () => {
    const challenge = challengeOf('Digest realm="sip.example.com", nonce="abc", stale=TRUE');
    expect(challenge).toEqual({ realm: 'sip.example.com', nonce: 'abc', algorithm: 'MD5', stale: true });
    const header = authorization(challenge, { username: 'bob', password: 'pw' }, { method: 'INVITE', uri: 'sip:+1@ccai.example.com', nc: 1 });
    expect(header).not.toMatch(/qop|nc=|cnonce/);
    expect(header).toMatch(/^Digest username="bob", realm="sip.example.com", nonce="abc", uri="sip:\+1@ccai.example.com", response="[0-9a-f]{32}", algorithm=MD5$/);
  });

  it.each([
    ['no challenge at all', 'Basic realm="x"', 'no Digest challenge'],
    ['no nonce', 'Digest realm="x"', 'Digest challenge without realm or nonce'],
    ['an algorithm we do not do', 'Digest realm="x", nonce="n", algorithm=SHA-512-256', 'Digest algorithm SHA-512-256 is not supported (MD5, SHA-256 and their -sess forms are)'],
    ['auth-int only', 'Digest realm="x", nonce="n", qop="auth-int"', 'Digest qop auth-int is not supported (auth is)'],
  ])('refuses %s with a reason', (_what, value, error) => {
    expect(parseChallenge(value)).toEqual({ ok: false, error });
  });

  it('quotes what it echoes: a realm with a quote and a backslash round-trips', () => {
    const challenge = challengeOf('Digest realm="a\\"b\\\\c", nonce="n"');
    expect(challenge.realm).toBe('a"b\\c');
    expect(authorization(challenge, { username: 'u', password: 'p' }, { method: 'INVITE', uri: 'sip:x', nc: 1 })).toContain('realm="a\\"b\\\\c"');
  });
});
