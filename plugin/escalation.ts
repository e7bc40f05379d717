import { ESCALATION_MATCH_FLAGS } from '../config/json-settings.js';
import type { EscalationRule } from '../config/schema.js';

/**
 * Turns the bot's BYE into the Talkdesk verdict. A Kore bot escalates by ending its SIP leg (Agent Transfer set to
 * "SIP BYE") with headers of the customer's choosing, including User-to-User (talkdesk-protocol.md §6), so which
 * header names the ring group is configuration: ESCALATION_RULES. Pure; the regular expressions are compiled once.
 */

/** Read access to a received request's headers, case-insensitive; drachtio-srf's SipMessage has it. */
export interface HeaderSource {
  get(name: string): string | undefined;
}

export type Verdict = { command: 'ok' } | { command: 'escalate'; ringGroup: string; rule: string };

export type EscalationPolicy = (bye: HeaderSource) => Verdict;

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

  return (bye) => {
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
        fallback;
      return { command: 'escalate', ringGroup, rule: rule.name };
    }
    return { command: 'ok' };
  };
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
