/**
 * The two bits of RFC 3261 §25.1 grammar that settings and the Talkdesk URL are checked against. Kept beside the
 * config because both the loader and the upgrade check (plugin/talkdesk/auth.ts) need the same answer.
 */

/**
 * A SIP URI user part without escapes: `unreserved / user-unreserved` (alphanum, `-_.!~*'()`, `&=+$,;?/`).
 * `%` escapes are left out on purpose: the value arrives URL-decoded, so a `%` here means a double encoding.
 */
export const SIP_USER = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/]+$/;

/** A header field name: RFC 3261 `token` (alphanum and `-.!%*_+\`'~`). */
export const SIP_TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
