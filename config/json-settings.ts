import { TALKDESK_FIELDS, type BotCredentials, type EscalationRule, type TalkdeskField } from './schema.js';
import { SIP_TOKEN } from './sip-grammar.js';

/**
 * Validators for the three settings whose value is JSON text (portal textareas). Each returns the typed value or
 * every problem found, each message naming the setting and the element at fault.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: string[] };

const BOTS_EXAMPLE = '[{"botId":"st-…","clientId":"cs-…","clientSecret":"…"}]';
/**
 * A rotation needs two secrets at once (the new one and the one Kore still signs with); a third leaves room for a
 * rotation begun before the last one ended. Each costs an HMAC on every token that matches none, so no more.
 */
export const MAX_SECRETS_PER_BOT = 3;

export function parseBots(text: string): Parsed<BotCredentials[]> {
  // JSON.parse's message quotes the text around the error, and this text holds client secrets: say only "invalid"
  const parsed = parseJson(text);
  if (!parsed.ok || !Array.isArray(parsed.value) || parsed.value.length === 0) {
    return { ok: false, errors: [`BOTS: must be a non-empty JSON array such as ${BOTS_EXAMPLE}`] };
  }
  const errors: string[] = [];
  const bots: BotCredentials[] = [];
  const seen = new Set<string>();
  parsed.value.forEach((item: unknown, i) => {
    if (!isObject(item)) {
      errors.push(`BOTS[${i}]: must be an object with botId, clientId and clientSecret`);
      return;
    }
    const { botId, clientId, clientSecret } = item;
    const secretGiven = isFilled(clientSecret) || Array.isArray(clientSecret);
    if (!isFilled(botId) || !isFilled(clientId) || !secretGiven) {
      const missing = Object.entries({ botId, clientId }).filter(([, v]) => !isFilled(v)).map(([k]) => k);
      if (!secretGiven) missing.push('clientSecret');
      errors.push(`BOTS[${i}]: ${missing.join(', ')} must be non-empty strings`);
      return;
    }
    const secrets = parseSecrets(`BOTS[${i}].clientSecret`, clientSecret as string | unknown[]);
    if (!secrets.ok) {
      errors.push(...secrets.errors);
      return;
    }
    const bot = { botId, clientId, clientSecrets: secrets.value };
    if (seen.has(botId)) errors.push(`BOTS[${i}]: botId ${JSON.stringify(botId)} is listed twice; each bot once`);
    seen.add(bot.botId);
    bots.push(bot);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: bots };
}

/**
 * One secret (`"…"`), or while rotating several, current first (`["new…", "old…"]`). Messages give positions only:
 * the values are secrets.
 */
function parseSecrets(at: string, value: string | unknown[]): Parsed<BotCredentials['clientSecrets']> {
  if (!Array.isArray(value)) return { ok: true, value: [value] };
  const rotation = `a string, or while rotating an array of up to ${MAX_SECRETS_PER_BOT}, current first: ["new…","old…"]`;
  if (value.length === 0 || value.length > MAX_SECRETS_PER_BOT) {
    return { ok: false, errors: [`${at}: ${value.length} secrets; must be ${rotation}`] };
  }
  const errors: string[] = [];
  value.forEach((secret, j) => {
    if (!isFilled(secret)) errors.push(`${at}[${j}]: must be a non-empty string`);
    else if (value.indexOf(secret) !== j) errors.push(`${at}[${j}]: the same secret as ${at}[${value.indexOf(secret)}]; list each once`);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: value as [string, ...string[]] };
}

/**
 * Headers the SIP stack writes itself: a mapping onto one of them would produce a duplicate or a broken INVITE.
 * Compared lower-case.
 */
const RESERVED_HEADERS = new Set([
  'via', 'from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'content-type', 'content-length', 'route',
  'record-route', 'v', 'f', 't', 'i', 'm', 'c', 'l',
]);

export function parseSipHeaders(text: string): Parsed<Record<string, TalkdeskField>> {
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, errors: [`SIP_HEADERS: not valid JSON (${parsed.why})`] };
  if (!isObject(parsed.value)) {
    const example = '{"X-Talkdesk-Call-Sid":"callSid"}';
    return { ok: false, errors: [`SIP_HEADERS: must be a JSON object of header name → Talkdesk field, e.g. ${example}`] };
  }
  const errors: string[] = [];
  const headers: Record<string, TalkdeskField> = {};
  const seen = new Set<string>();
  for (const [name, field] of Object.entries(parsed.value)) {
    const lower = name.toLowerCase();
    if (!SIP_TOKEN.test(name)) {
      const allowed = "letters, digits and -.!%*_+`'~ only";
      errors.push(`SIP_HEADERS: ${JSON.stringify(name)} is not a valid SIP header name (${allowed})`);
    } else if (RESERVED_HEADERS.has(lower)) {
      errors.push(`SIP_HEADERS: ${name} is written by the SIP stack itself; use a custom header such as X-${name}`);
    } else if (seen.has(lower)) {
      errors.push(`SIP_HEADERS: ${name} is listed twice (header names are case-insensitive)`);
    }
    seen.add(lower);
    if (typeof field !== 'string' || !(TALKDESK_FIELDS as readonly string[]).includes(field)) {
      const fields = TALKDESK_FIELDS.join(', ');
      errors.push(`SIP_HEADERS: ${name} must map to one of ${fields} (got ${JSON.stringify(field)})`);
      continue;
    }
    headers[name] = field as TalkdeskField;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: headers };
}

const RULE_KEYS = new Set(['name', 'header', 'decode', 'match', 'field', 'ringGroup']);
const DOT_PATH = /^[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/;

/** Escalation rules. `match` is compiled with the flags escalation.ts uses: a rule that loads is a rule that runs. */
export function parseEscalationRules(text: string): Parsed<EscalationRule[]> {
  const parsed = parseJson(text);
  if (!parsed.ok) return { ok: false, errors: [`ESCALATION_RULES: not valid JSON (${parsed.why})`] };
  if (!Array.isArray(parsed.value)) {
    const example = '[{"header":"X-Escalation-Data","field":"queue"}]';
    return { ok: false, errors: [`ESCALATION_RULES: must be a JSON array of rules such as ${example}, or [] for none`] };
  }
  const errors: string[] = [];
  const rules: EscalationRule[] = [];
  parsed.value.forEach((item: unknown, i) => {
    const at = `ESCALATION_RULES[${i}]`;
    if (!isObject(item)) {
      errors.push(`${at}: must be an object with at least "header"`);
      return;
    }
    const before = errors.length;
    // an unknown key is most likely a misspelt one (ringgroup, Match) whose intent would be silently lost
    for (const key of Object.keys(item)) {
      if (!RULE_KEYS.has(key)) {
        errors.push(`${at}: unknown key ${JSON.stringify(key)}; allowed keys are ${[...RULE_KEYS].join(', ')}`);
      }
    }
    const { name, header, decode, match, field, ringGroup } = item;
    if (typeof header !== 'string' || !SIP_TOKEN.test(header)) {
      errors.push(`${at}.header: must be a SIP header name such as X-Escalate (got ${JSON.stringify(header)})`);
    }
    if (name !== undefined && typeof name !== 'string') errors.push(`${at}.name: must be a string`);
    if (decode !== undefined && decode !== 'text' && decode !== 'uui') {
      errors.push(`${at}.decode: must be "text" or "uui" (got ${JSON.stringify(decode)})`);
    }
    if (match !== undefined) {
      const why = typeof match === 'string' ? regexError(match) : 'must be a string';
      if (why !== undefined) errors.push(`${at}.match: ${why}`);
    }
    if (field !== undefined && (typeof field !== 'string' || !DOT_PATH.test(field))) {
      errors.push(`${at}.field: must be a dot path such as queue or routing.ringGroup (got ${JSON.stringify(field)})`);
    }
    if (ringGroup !== undefined && !isFilled(ringGroup)) errors.push(`${at}.ringGroup: must be a non-empty string`);
    if (errors.length > before) return;
    const rule: EscalationRule = { header: header as string };
    if (name !== undefined) rule.name = name as string;
    if (decode !== undefined) rule.decode = decode as 'text' | 'uui';
    if (match !== undefined) rule.match = match as string;
    if (field !== undefined) rule.field = field as string;
    if (ringGroup !== undefined) rule.ringGroup = ringGroup as string;
    rules.push(rule);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: rules };
}

/** Rules match case-insensitively: SIP header values such as `true`/`TRUE` or `transfer`/`Transfer` vary in case. */
export const ESCALATION_MATCH_FLAGS = 'i';

function regexError(source: string): string | undefined {
  try {
    new RegExp(source, ESCALATION_MATCH_FLAGS);
    return undefined;
  } catch (err) {
    const hint = /\(\?[a-z]/i.test(source)
      ? '; inline flags such as (?i) are not JavaScript syntax, and matching is already case-insensitive'
      : '';
    return `not a valid JavaScript regular expression (${(err as Error).message})${hint}`;
  }
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; why: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, why: (err as Error).message };
  }
}

function isFilled(x: unknown): x is string {
  return typeof x === 'string' && x !== '';
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
