import type { SipMessageView } from './backend.js';

/** RFC 4733 event names for the 16 DTMF keys; `Signal=` carries one of these (or its event number). */
const KEYS = '0123456789*#ABCD';

/**
 * The digit an in-dialog INFO carries, in the two bodies platforms use instead of RFC 4733: `application/dtmf-relay`
 * (`Signal=5\r\nDuration=160`, Cisco's format, the common one) and `application/dtmf` (the bare key). Anything else,
 * or a body that names no key, is no digit. Pure: never throws.
 */
export function digitFromInfo(info: SipMessageView): string | undefined {
  const type = info.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  let value: string | undefined;
  if (type === 'application/dtmf-relay') value = /^\s*signal\s*=\s*(\S+)\s*$/im.exec(info.body)?.[1];
  else if (type === 'application/dtmf') value = info.body.trim();
  if (value === undefined) return undefined;
  const key = /^\d+$/.test(value) && Number(value) <= 15 ? KEYS[Number(value)] : value.toUpperCase();
  return key !== undefined && key.length === 1 && KEYS.includes(key) ? key : undefined;
}
