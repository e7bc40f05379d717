import { ESCALATION_MATCH_FLAGS } from '../../config/json-settings.js';
import type { EscalationRule } from '../../config/schema.js';

/**
 * Turns the bot's BYE into the Talkdesk verdict. A Kore bot escalates by ending its SIP leg (Agent Transfer set to
 * "SIP BYE") with headers of the customer's choosing, including User-to-User (talkdesk-protocol.md §6), so which
 * header names the ring group is configuration: ESCALATION_RULES. Or it transfers with a REFER (`voiceUtils.refer`),
 * which is always an escalation, read by the same rules (referVerdict). Pure; the regular expressions are compiled
 * once.
 */

/** Read access to a received request's headers, case-insensitive; drachtio-srf's SipMessage has it. */
export interface HeaderSource {
  get(name: string): string | undefined;
}

export type Verdict = { command: 'ok' } | { command: 'escalate'; ringGroup: string; rule: string };

export type Escalation = Extract<Verdict, { command: 'escalate' }>;

/**
 * `fallbackRingGroup`: the ring group of a rule that matches without yielding one, before DEFAULT_RING_GROUP (a
 * REFER passes its Refer-To user part).
 */
export type EscalationPolicy = (bye: HeaderSource, fallbackRingGroup?: string) => Verdict;

/** Talkdesk passes ringGroup to the flow as is; a production bridge caps it near 256 (talkdesk-protocol.md §3.4). */
const MAX_RING_GROUP_CHARS = 256;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

interface CompiledRule {
  name: string;
  header: string;
  uui: boolean;
  regex: RegExp | undefined;
  path: string[] | undefined;
  ringGroup: string | undefined;
}

/**
 * The rules, tried in order, the first match deciding. A rule matches when its header is present and, with
 * `match`, the decoded value matches (case-insensitively). Its ring group is the first usable of: the JSON `field`
 * of the decoded value, the first capture group, the rule's `ringGroup`, `defaultRingGroup`. A value that is not
 * JSON, or lacks the field, only moves on to the next source: a sloppy header still escalates.
 *
 * The rules come from loadConfig, which has already compiled every `match` with the same flags.
 */
export function compileRules(rules: readonly EscalationRule[], defaultRingGroup: string): EscalationPolicy {
  const compiled: CompiledRule[] = rules.map((rule) => ({
    name: rule.name ?? rule.header,
    header: rule.header,
    uui: rule.decode === 'uui',
    regex: rule.match === undefined ? undefined : new RegExp(rule.match, ESCALATION_MATCH_FLAGS),
    path: rule.field?.split('.'),
    ringGroup: rule.ringGroup,
  }));
  const fallback = cleanRingGroup(defaultRingGroup) ?? '';

  return (bye, fallbackRingGroup) => {
    for (const rule of compiled) {
      const raw = bye.get(rule.header);
      if (raw === undefined) continue;
      const value = rule.uui ? decodeUui(raw) : raw;
      const found = rule.regex?.exec(value);
      if (found === null) continue;
      const ringGroup =
        cleanRingGroup(rule.path && jsonField(value, rule.path)) ??
        cleanRingGroup(found?.[1]) ??
        cleanRingGroup(rule.ringGroup) ??
        cleanRingGroup(fallbackRingGroup) ??
        fallback;
      return { command: 'escalate', ringGroup, rule: rule.name };
    }
    return { command: 'ok' };
  };
}

/**
 * A REFER from the bot (Kore's `voiceUtils.refer(message, referTo, headers)`) is always an escalation: the bot asks
 * for the caller to be transferred, and its own leg is done. The same ESCALATION_RULES as for a BYE decide the ring
 * group, over the REFER's headers (Refer-To itself included, so `{"header":"Refer-To","match":"^<?sips?:([^@;>]+)"}`
 * works) plus the headers embedded in the Refer-To URI (`<sip:queue@host?X-Queue=billing>`, %-decoded; a header of
 * the REFER itself wins over an embedded one of the same name). A rule that matches without yielding a ring group
 * falls back to the Refer-To user part. When no rule matches, the ring group is the Refer-To user part (a `sip:`,
 * `sips:` or `tel:` target, %-decoded, user parameters cut), else `defaultRingGroup` (DEFAULT_RING_GROUP).
 */
export function referVerdict(policy: EscalationPolicy, refer: HeaderSource, defaultRingGroup: string): Escalation {
  const target = parseReferTo(refer.get('refer-to') ?? refer.get('r')); // r: the compact form (RFC 3515 §7.1)
  const targetUser = cleanRingGroup(target.user);
  const verdict = policy(referHeaders(refer, target.headers), targetUser);
  if (verdict.command === 'escalate') return verdict;
  if (targetUser !== undefined) return { command: 'escalate', ringGroup: targetUser, rule: 'refer-to-user' };
  return { command: 'escalate', ringGroup: cleanRingGroup(defaultRingGroup) ?? '', rule: 'refer-default' };
}

export interface ReferTarget {
  /** the user part of a sip/sips URI or the number of a tel URI, %-decoded */
  user?: string;
  /** the URI's embedded headers (RFC 3261 §19.1.1 `?name=value&…`), names lower-cased, values %-decoded */
  headers: Readonly<Record<string, string>>;
}

/** Reads a Refer-To value: `"name" <sip:user@host;params?headers>;params`, or a bare URI. Never throws. */
export function parseReferTo(value: string | undefined): ReferTarget {
  if (value === undefined) return { headers: {} };
  const open = value.indexOf('<');
  const close = open < 0 ? -1 : value.indexOf('>', open);
  const uri = (open >= 0 && close > open ? value.slice(open + 1, close) : value).trim();
  const question = uri.indexOf('?');
  const base = question < 0 ? uri : uri.slice(0, question);
  const headers: Record<string, string> = {};
  if (question >= 0) {
    for (const pair of uri.slice(question + 1).split('&')) {
      const eq = pair.indexOf('=');
      const name = percentDecode(eq < 0 ? pair : pair.slice(0, eq)).trim().toLowerCase();
      if (name) headers[name] = percentDecode(eq < 0 ? '' : pair.slice(eq + 1));
    }
  }
  const m = /^(?:sips?:([^@]*)@|tel:([^;?]*))/i.exec(base);
  const user = (m?.[1] ?? m?.[2])?.split(';')[0];
  return user ? { user: percentDecode(user), headers } : { headers };
}

/** the REFER's own headers first, then those embedded in its Refer-To URI */
function referHeaders(refer: HeaderSource, embedded: Readonly<Record<string, string>>): HeaderSource {
  return { get: (name) => refer.get(name) ?? embedded[name.toLowerCase()] };
}

function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * User-to-User (RFC 7433): `data;encoding=hex;purpose=…;content=…`. The data is hex when `encoding=hex` says so,
 * or, with no encoding parameter, when it looks like hex (some senders omit the parameter); otherwise text.
 */
export function decodeUui(header: string): string {
  const [data = '', ...params] = header.split(';').map((part) => part.trim());
  const encoding = params.find((p) => p.toLowerCase().startsWith('encoding='))?.slice('encoding='.length).toLowerCase();
  const hex = encoding === 'hex' || (encoding === undefined && HEX.test(data));
  return hex && HEX.test(data) ? Buffer.from(data, 'hex').toString('utf8') : data;
}

/** The string (or number) at a dot path of a JSON text; undefined when it is not JSON or holds no such scalar. */
function jsonField(text: string, path: readonly string[]): string | undefined {
  let node: unknown;
  try {
    node = JSON.parse(text);
  } catch {
    return undefined;
  }
  for (const key of path) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return typeof node === 'string' || typeof node === 'number' ? String(node) : undefined;
}

/** Control characters stripped (the value travels in a JSON frame into a Studio flow), capped; '' is no value. */
function cleanRingGroup(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const clean = value.replace(CONTROL_CHARS, '').trim();
  if (clean === '') return undefined;
  return clean.length > MAX_RING_GROUP_CHARS ? Array.from(clean).slice(0, MAX_RING_GROUP_CHARS).join('') : clean;
}
