import { randomBytes } from 'node:crypto';

/**
 * SDES keying for SRTP (RFC 4568): the `a=crypto` attribute we offer and the ones the bot answers with.
 * Pure: no sockets, no SRTP state. Only AES_CM_128_HMAC_SHA1_80 is spoken: RFC 3711's default transforms, the suite
 * SDES peers offer first, and all SrtpContext (srtp.ts) implements; _32 and F8 are not.
 */

/** The only suite we offer or accept (RFC 4568 §6.2.1). */
export const SDES_SUITE = 'AES_CM_128_HMAC_SHA1_80';
/** Our one offered attribute's tag. RFC 4568 §5.1.2: an accepting answer echoes the tag it accepts. */
export const OFFER_TAG = 1;

const KEY_BYTES = 16;
const SALT_BYTES = 14;
/** 30 bytes of key‖salt are exactly 40 base64 characters, no padding (RFC 4568 §6.1). */
const INLINE_CHARS = 40;
/**
 * 2^20 packets ≈ 5.8 hours of 20 ms packets. We never re-key mid-call, so a shorter lifetime is one we could not
 * honour on a long call; longer ones (the common 2^31) are accepted and need no action.
 */
const MIN_LIFETIME_PACKETS = 2 ** 20;

/** One direction's SRTP master key: 16 B AES key and 14 B salt. */
export interface SrtpMasterKey {
  readonly key: Buffer;
  readonly salt: Buffer;
}

/** The keys one SRTP session needs: ours encrypts what we send, theirs decrypts what the bot sends. */
export interface SrtpKeys {
  readonly ourKey: SrtpMasterKey;
  readonly theirKey: SrtpMasterKey;
}

/** One parsed `a=crypto` value that we can use. */
export interface SdesCrypto {
  readonly tag: number;
  readonly suite: typeof SDES_SUITE;
  readonly key: SrtpMasterKey;
}

export type SdesResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** A fresh random master key and salt for one call (never reused across calls: RFC 3711 §9.1). */
export function newMasterKey(): SrtpMasterKey {
  const bytes = randomBytes(KEY_BYTES + SALT_BYTES);
  return { key: bytes.subarray(0, KEY_BYTES), salt: bytes.subarray(KEY_BYTES) };
}

/** The value of our `a=crypto:` line: `1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key‖salt>`, no lifetime, no MKI. */
export function formatCrypto(key: SrtpMasterKey, tag = OFFER_TAG): string {
  if (key.key.length !== KEY_BYTES || key.salt.length !== SALT_BYTES) {
    throw new RangeError(`formatCrypto: need a ${KEY_BYTES} B key and a ${SALT_BYTES} B salt`);
  }
  return `${tag} ${SDES_SUITE} inline:${Buffer.concat([key.key, key.salt]).toString('base64')}`;
}

export function sameMasterKey(a: SrtpMasterKey, b: SrtpMasterKey): boolean {
  return a.key.equals(b.key) && a.salt.equals(b.salt);
}

/*
 * RFC 4568 §4, §6.1, §6.3:
 *   a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]
 *   key-params  = "inline:" <base64 key‖salt> ["|" lifetime] ["|" MKI ":" MKI-length]  (";"-separated for several)
 *   lifetime    = decimal | "2^" decimal
 *   session-param, e.g. KDR=n (1-24), UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP, FEC_ORDER=…, FEC_KEY=…, WSH=n
 */

/**
 * Parses one `a=crypto` value (what follows `a=crypto:`). Never throws. Anything SrtpContext could not honour is
 * refused with the reason: another suite, an MKI (its packets carry no MKI field), several keys, a short lifetime,
 * a key derivation rate, unencrypted/unauthenticated SRTP, FEC.
 */
export function parseCrypto(value: string): SdesResult<SdesCrypto> {
  if (typeof value !== 'string') return fail('crypto attribute is not a string');
  const parts = value.trim().split(/[ \t]+/);
  const shown = `a=crypto:${value.trim().slice(0, 120)}`;
  if (parts.length < 3) return fail(`malformed ${shown}: expected "<tag> <suite> inline:<key>"`);
  const [tagText, suite, keyParams, ...sessionParams] = parts as [string, string, string, ...string[]];
  if (!/^\d{1,9}$/.test(tagText)) return fail(`malformed tag in ${shown}`);
  const tag = Number(tagText);
  if (suite !== SDES_SUITE) {
    return fail(`crypto suite ${suite} (tag ${tag}) is not supported; only ${SDES_SUITE}`);
  }

  if (keyParams.includes(';')) return fail(`several master keys in tag ${tag} are not supported (only one, no MKI)`);
  if (!keyParams.startsWith('inline:')) return fail(`key method in tag ${tag} is not "inline:" (RFC 4568 §6.1)`);
  const [keySalt, ...extras] = keyParams.slice('inline:'.length).split('|') as [string, ...string[]];
  if (keySalt.length !== INLINE_CHARS || !/^[A-Za-z0-9+/]+$/.test(keySalt)) {
    return fail(`inline key in tag ${tag} is not ${INLINE_CHARS} base64 characters (${KEY_BYTES} B key + ${SALT_BYTES} B salt)`);
  }
  if (extras.length > 2) return fail(`malformed key parameters in tag ${tag}: too many "|" fields`);
  for (const extra of extras) {
    if (extra.includes(':')) {
      return fail(`MKI "${extra}" in tag ${tag} is not supported: SRTP packets here carry no MKI field`);
    }
    const lifetime = parseLifetime(extra);
    if (lifetime === undefined) return fail(`malformed key lifetime "${extra}" in tag ${tag}`);
    if (lifetime < MIN_LIFETIME_PACKETS) {
      return fail(`key lifetime ${extra} in tag ${tag} is below 2^20 packets; re-keying mid-call is not supported`);
    }
  }

  for (const param of sessionParams) {
    const refused = refusedSessionParam(param);
    if (refused !== undefined) return fail(`session parameter ${param} in tag ${tag} is not supported: ${refused}`);
  }

  const bytes = Buffer.from(keySalt, 'base64');
  return { ok: true, value: { tag, suite: SDES_SUITE, key: { key: bytes.subarray(0, KEY_BYTES), salt: bytes.subarray(KEY_BYTES) } } };
}

/**
 * The first usable attribute among `values` (answers carry one; a bot's re-INVITE offer may carry several, in its
 * order of preference). With `tag`, only that tag is usable: an answer must accept the tag we offered (RFC 4568
 * §5.1.2). The error names every attribute refused and why, or says there were none.
 */
export function chooseCrypto(values: readonly string[], tag?: number): SdesResult<SdesCrypto> {
  if (values.length === 0) return fail('no a=crypto attribute');
  const reasons: string[] = [];
  for (const v of values) {
    const parsed = parseCrypto(v);
    if (!parsed.ok) reasons.push(parsed.error);
    else if (tag !== undefined && parsed.value.tag !== tag) reasons.push(`tag ${parsed.value.tag} was not offered (we offered ${tag})`);
    else return parsed;
  }
  return fail(reasons.join('; '));
}

function parseLifetime(text: string): number | undefined {
  const power = /^2\^(\d{1,2})$/.exec(text);
  if (power) return 2 ** Number(power[1]);
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** undefined when the parameter is harmless here; otherwise why it is refused. */
function refusedSessionParam(param: string): string | undefined {
  const [name, arg] = param.split('=', 2) as [string, string | undefined];
  switch (name) {
    case 'KDR':
      // Without KDR, session keys are derived once (RFC 3711 §4.3.1), which is all SrtpContext does.
      return `key derivation rate 2^${arg ?? '?'} (only the default single derivation, no KDR)`;
    case 'UNENCRYPTED_SRTCP':
      return undefined; // the bot's unencrypted SRTCP is taken once authenticated (its E flag says so); ours stays encrypted
    case 'WSH':
      return undefined; // a hint; our replay window (128 packets) is above its minimum of 64
    case 'UNENCRYPTED_SRTP':
    case 'UNAUTHENTICATED_SRTP':
      return 'every SRTP packet here is encrypted and authenticated';
    case 'FEC_ORDER':
    case 'FEC_KEY':
      return 'no forward error correction';
    default:
      // RFC 4568 §6.3: an unknown parameter makes the attribute unusable, unless it is marked optional with "-".
      return name.startsWith('-') ? undefined : 'unknown';
  }
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
