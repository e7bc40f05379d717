/**
 * Readers for the header fields the UA core and transactions act on (RFC 3261 §20, grammar in §25.1). drachtio's
 * SipMessage keeps every header as raw text (repeated headers joined with ","); these parse that text. Each returns
 * undefined on text it cannot read instead of throwing.
 */

export type Params = Readonly<Record<string, string | null>>;

/** `;a=b;c` → {a: 'b', c: null}; names lower-cased (§7.3.1: parameter names are case-insensitive). */
export function parseParams(text: string): Params {
  const params: Record<string, string | null> = {};
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name) params[name] = eq < 0 ? null : part.slice(eq + 1).trim();
  }
  return params;
}

/** A name-addr or addr-spec (§20.10): the URI and the header parameters after it (e.g. tag). */
export interface NameAddr {
  readonly uri: string;
  readonly params: Params;
}

export function parseNameAddr(value: string): NameAddr | undefined {
  const open = value.indexOf('<');
  if (open >= 0) {
    const close = value.indexOf('>', open);
    if (close < 0) return undefined;
    return { uri: value.slice(open + 1, close).trim(), params: parseParams(value.slice(close + 1)) };
  }
  // addr-spec form: every ";param" belongs to the header, not to the URI (§20.10)
  const [uri, ...rest] = value.trim().split(';');
  return uri ? { uri, params: parseParams(rest.join(';')) } : undefined;
}

/** the tag parameter of a From or To value (§19.3) */
export function tagOf(value: string | undefined): string | undefined {
  const tag = value === undefined ? undefined : parseNameAddr(value)?.params.tag;
  return tag ?? undefined;
}

/** One Via value (§20.42): `SIP/2.0/UDP host:port;branch=…;rport` */
export interface Via {
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
}

const VIA = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)\s+(\[[0-9A-Fa-f:.]+\]|[^\s;:]+)(?:\s*:\s*(\d{1,5}))?\s*(;.*)?$/;

export function parseVia(value: string): Via | undefined {
  const m = VIA.exec(value.trim());
  if (!m) return undefined;
  return {
    transport: m[1]!.toUpperCase(),
    host: m[2]!,
    ...(m[3] ? { port: Number(m[3]) } : {}),
    params: parseParams(m[4] ?? ''),
  };
}

/** CSeq (§20.16): sequence number and method */
export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

/** the method is a token (§25.1): alphanumerics and -.!%*_+`'~ */
const CSEQ = /^\s*(\d{1,10})\s+([A-Za-z0-9!%*_+`'~.-]+)\s*$/;

export function parseCSeq(value: string): CSeq | undefined {
  const m = CSEQ.exec(value);
  if (!m) return undefined;
  const seq = Number(m[1]);
  // §8.1.1.5: the sequence number must be less than 2^31
  return seq < 2 ** 31 ? { seq, method: m[2]! } : undefined;
}
