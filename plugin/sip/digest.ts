import { createHash, randomBytes } from 'node:crypto';

/**
 * SIP digest authentication, the client's side (RFC 3261 §22.4 over RFC 2617, with RFC 7616's SHA-256 as RFC 8760
 * brings it to SIP): read a 401/407's challenge, answer it. Pure apart from the cnonce; parsers return results.
 */

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque?: string;
  algorithm: DigestAlgorithm;
  /** `auth` when the server offers it (RFC 2617 §3.2.1); absent for an RFC 2069 challenge. auth-int is not done. */
  qop?: 'auth';
  /** the nonce was stale, the credentials were right: answer the new nonce (RFC 2617 §3.2.1) */
  stale: boolean;
}

export interface DigestCredentials {
  username: string;
  password: string;
}

/** RFC 8760 §2.4: a server may offer several challenges, best first by its choice; we take the strongest we do. */
const PREFERENCE: readonly DigestAlgorithm[] = ['SHA-256', 'SHA-256-sess', 'MD5', 'MD5-sess'];

/**
 * The challenge to answer from a WWW-Authenticate or Proxy-Authenticate value (several challenges, or several header
 * lines joined with commas, are told apart at each `Digest` scheme token). An error names what is missing or not
 * done (an unknown algorithm, a qop of auth-int only).
 */
export function parseChallenge(value: string): { ok: true; challenge: DigestChallenge } | { ok: false; error: string } {
  const found: DigestChallenge[] = [];
  let error = 'no Digest challenge';
  for (const part of value.split(/,\s*(?=Digest\s)/i)) {
    const m = /^\s*Digest\s+(.*)$/is.exec(part);
    if (!m) continue;
    const params = authParams(m[1]!);
    const algorithm = (params.get('algorithm') ?? 'MD5').toUpperCase();
    const known = PREFERENCE.find((a) => a.toUpperCase() === algorithm);
    const realm = params.get('realm');
    const nonce = params.get('nonce');
    const qops = params.get('qop')?.split(',').map((q) => q.trim().toLowerCase());
    if (realm === undefined || nonce === undefined) {
      error = 'Digest challenge without realm or nonce';
    } else if (!known) {
      error = `Digest algorithm ${algorithm} is not supported (MD5, SHA-256 and their -sess forms are)`;
    } else if (qops !== undefined && !qops.includes('auth')) {
      error = `Digest qop ${qops.join(',')} is not supported (auth is)`;
    } else {
      const opaque = params.get('opaque');
      found.push({
        realm,
        nonce,
        algorithm: known,
        stale: params.get('stale')?.toLowerCase() === 'true',
        ...(opaque === undefined ? {} : { opaque }),
        ...(qops === undefined ? {} : { qop: 'auth' as const }),
      });
    }
  }
  found.sort((a, b) => PREFERENCE.indexOf(a.algorithm) - PREFERENCE.indexOf(b.algorithm));
  return found[0] === undefined ? { ok: false, error } : { ok: true, challenge: found[0] };
}

export interface DigestRequest {
  method: string;
  uri: string;
  /** nonce count: 1 for the first request with a nonce, one more for each after it */
  nc: number;
  /** the client nonce; a fresh random one when absent (tests pass the RFCs') */
  cnonce?: string;
}

/** The Authorization (or Proxy-Authorization) value answering `challenge` (RFC 2617 §3.2.2, RFC 7616 §3.4). */
export function authorization(challenge: DigestChallenge, credentials: DigestCredentials, request: DigestRequest): string {
  const hash = challenge.algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  const h = (s: string): string => createHash(hash).update(s).digest('hex');
  const cnonce = request.cnonce ?? randomBytes(12).toString('hex');
  const nc = request.nc.toString(16).padStart(8, '0');
  let ha1 = h(`${credentials.username}:${challenge.realm}:${credentials.password}`);
  if (challenge.algorithm.endsWith('-sess')) ha1 = h(`${ha1}:${challenge.nonce}:${cnonce}`);
  const ha2 = h(`${request.method}:${request.uri}`);
  const response = challenge.qop
    ? h(`${ha1}:${challenge.nonce}:${nc}:${cnonce}:${challenge.qop}:${ha2}`)
    : h(`${ha1}:${challenge.nonce}:${ha2}`);
  const fields = [
    `username=${quoted(credentials.username)}`,
    `realm=${quoted(challenge.realm)}`,
    `nonce=${quoted(challenge.nonce)}`,
    `uri=${quoted(request.uri)}`,
    `response=${quoted(response)}`,
    `algorithm=${challenge.algorithm}`,
    ...(challenge.opaque === undefined ? [] : [`opaque=${quoted(challenge.opaque)}`]),
    ...(challenge.qop ? [`qop=${challenge.qop}`, `nc=${nc}`, `cnonce=${quoted(cnonce)}`] : []),
  ];
  return `Digest ${fields.join(', ')}`;
}

/** auth-param list (RFC 7235 §2.1): token=token or token="quoted-string", names case-insensitive. */
function authParams(text: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (const m of text.matchAll(re)) params.set(m[1]!.toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!);
  return params;
}

function quoted(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** Credentials as configured: with `realm`, only that realm's challenges are answered. */
export interface ConfiguredCredentials extends DigestCredentials {
  realm?: string;
}

/**
 * The challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) that `credentials` may answer (RFC 3261
 * §22.2, §22.3), or why not: no challenge we do, or one for another realm than the configured one, so the password
 * goes to no other. Both adapters ask this, whichever computes the answer.
 */
export function challengeToAnswer(
  status: 401 | 407,
  header: (name: string) => string | undefined,
  credentials: ConfiguredCredentials,
): { ok: true; challenge: DigestChallenge } | { ok: false; problem: string } {
  const parsed = parseChallenge(header(status === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate') ?? '');
  if (!parsed.ok) return { ok: false, problem: parsed.error };
  const { challenge } = parsed;
  if (credentials.realm !== undefined && challenge.realm !== credentials.realm) {
    return { ok: false, problem: `challenge for realm ${challenge.realm}, not the configured ${credentials.realm}` };
  }
  return { ok: true, challenge };
}

/** The header that answers such a challenge to `method` `uri`: Authorization for a 401, Proxy-Authorization for a 407. */
export function answerChallenge(
  status: 401 | 407,
  header: (name: string) => string | undefined,
  credentials: ConfiguredCredentials,
  request: { method: string; uri: string },
): { ok: true; header: readonly [string, string]; challenge: DigestChallenge } | { ok: false; problem: string } {
  const accepted = challengeToAnswer(status, header, credentials);
  if (!accepted.ok) return accepted;
  const { challenge } = accepted;
  const value = authorization(challenge, credentials, { ...request, nc: 1 });
  return { ok: true, header: [status === 407 ? 'Proxy-Authorization' : 'Authorization', value], challenge };
}
