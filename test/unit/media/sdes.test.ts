import { describe, expect, it } from 'vitest';
import { chooseCrypto, formatCrypto, newMasterKey, parseCrypto, sameMasterKey } from '../../../media/sdes.js';

/** A key in RFC 4568's examples' style: 40 base64 characters = 16 B key + 14 B salt. */
const RFC_KEY = 'WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz';

describe('SDES a=crypto', () => {
  it('formats a fresh key as "1 AES_CM_128_HMAC_SHA1_80 inline:<40 base64 chars>" and parses it back to the same bytes', () => {
    const key = newMasterKey();
    expect(key.key).toHaveLength(16);
    expect(key.salt).toHaveLength(14);
    const line = formatCrypto(key);
    expect(line).toMatch(/^1 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40}$/);
    const parsed = parseCrypto(line);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.tag).toBe(1);
    expect(parsed.value.suite).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(sameMasterKey(parsed.value.key, key)).toBe(true);
    expect(formatCrypto(parsed.value.key, parsed.value.tag)).toBe(line);
  });

  it('draws a different key for every call', () => {
    expect(sameMasterKey(newMasterKey(), newMasterKey())).toBe(false);
  });

  it.each([
    ['lifetime=2^31', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|2^31`],
    ['lifetime=decimal', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|1099511627776`],
    ['WSH', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} WSH=128`],
    ['UNENCRYPTED_SRTCP', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} UNENCRYPTED_SRTCP`],
    ['optional unknown param', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} -FOO=1`],
    ['tabs and tag 9', `9\tAES_CM_128_HMAC_SHA1_80\tinline:${RFC_KEY}`],
  ])('accepts %s', (_name, value) => {
    const parsed = parseCrypto(value);
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && Buffer.concat([parsed.value.key.key, parsed.value.key.salt]).toString('base64')).toBe(RFC_KEY);
  });

  it.each([
    ['suite=AES_CM_128_HMAC_SHA1_32', `1 AES_CM_128_HMAC_SHA1_32 inline:${RFC_KEY}`, /suite AES_CM_128_HMAC_SHA1_32 \(tag 1\) is not supported/],
    ['suite=AEAD_AES_256_GCM', `2 AEAD_AES_256_GCM inline:${RFC_KEY}`, /suite AEAD_AES_256_GCM .* not supported/],
    ['MKI', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|2^20|1:4`, /MKI "1:4" in tag 1 is not supported/],
    ['MKI without lifetime', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|1:32`, /MKI/],
    ['two keys', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|2^20|1:4;inline:${RFC_KEY}|2^20|2:4`, /several master keys/],
    ['short lifetime', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|2^10`, /lifetime 2\^10 .* below 2\^20/],
    ['bad lifetime', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}|forever`, /malformed key lifetime/],
    ['KDR', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} KDR=23`, /KDR=23 .* not supported/],
    ['UNENCRYPTED_SRTP', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} UNENCRYPTED_SRTP`, /UNENCRYPTED_SRTP/],
    ['UNAUTHENTICATED_SRTP', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} UNAUTHENTICATED_SRTP`, /UNAUTHENTICATED_SRTP/],
    ['FEC_ORDER', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} FEC_ORDER=FEC_SRTP`, /forward error correction/],
    ['unknown mandatory param', `1 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY} FOO=1`, /FOO=1 .* unknown/],
    ['short key', '1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=', /not 40 base64 characters/],
    ['not base64', `1 AES_CM_128_HMAC_SHA1_80 inline:${'!'.repeat(40)}`, /not 40 base64/],
    ['another key method', `1 AES_CM_128_HMAC_SHA1_80 uri:${RFC_KEY}`, /not "inline:"/],
    ['no key', '1 AES_CM_128_HMAC_SHA1_80', /malformed a=crypto/],
    ['bad tag', `x AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}`, /malformed tag/],
    ['empty', '', /malformed/],
  ])('refuses %s with the reason', (_name, value, reason) => {
    const parsed = parseCrypto(value);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(reason);
  });

  it('never throws, even on a non-string', () => {
    expect(parseCrypto(undefined as unknown as string)).toEqual({ ok: false, error: 'crypto attribute is not a string' });
  });

  it('chooses the first usable attribute, and only the offered tag when one is required', () => {
    const k80 = `2 AES_CM_128_HMAC_SHA1_80 inline:${RFC_KEY}`;
    const k32 = `1 AES_CM_128_HMAC_SHA1_32 inline:${RFC_KEY}`;
    const chosen = chooseCrypto([k32, k80]);
    expect(chosen.ok && chosen.value.tag).toBe(2);

    const wrongTag = chooseCrypto([k32, k80], 1);
    expect(wrongTag.ok).toBe(false);
    expect(!wrongTag.ok && wrongTag.error).toBe(
      'crypto suite AES_CM_128_HMAC_SHA1_32 (tag 1) is not supported; only AES_CM_128_HMAC_SHA1_80; tag 2 was not offered (we offered 1)',
    );
    expect(chooseCrypto([])).toEqual({ ok: false, error: 'no a=crypto attribute' });
  });
});
