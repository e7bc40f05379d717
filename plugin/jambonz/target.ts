import { parseSipHeaders } from '../../config/json-settings.js';
import type { PluginConfig, SipTransport } from '../../config/schema.js';
import { SettingsReader } from '../../config/settings.js';
import { SIP_USER } from '../../config/sip-grammar.js';
import { requestUri, talkdeskHeaders } from '../sip/invite-target.js';

/**
 * Where a call that jambonz routes to the service path goes (sip-notes §3.5 option 1): a `dial` to the CCAI SIP
 * target, built like the Talkdesk INVITE (invite-target.ts), from this instance's settings with the application's
 * portal values (`session:new` `env_vars`) over them. Pure: nothing here changes the instance's config.
 */

/** the env_vars that apply to a jambonz-originated call; every other name is the instance's alone */
export const JAMBONZ_CALL_SETTINGS = ['CCAI_SIP_HOST', 'CCAI_SIP_PORT', 'CCAI_SIP_TRANSPORT', 'CCAI_SIP_SCHEME', 'SIP_HEADERS'] as const;
export type JambonzCallSetting = (typeof JAMBONZ_CALL_SETTINGS)[number];

/** headers that carry the jambonz call to the bot, always sent (a SIP_HEADERS mapping cannot replace them) */
export const JAMBONZ_ID_HEADERS = {
  callSid: 'X-Jambonz-Call-Sid',
  accountSid: 'X-Jambonz-Account-Sid',
  applicationSid: 'X-Jambonz-Application-Sid',
} as const;

/** the `session:new` fields the target is built from, as jambonz sent them (unchecked) */
export interface JambonzCall {
  to: unknown;
  callSid: unknown;
  accountSid: unknown;
  applicationSid: unknown;
}

export interface CcaiTarget {
  /** `<scheme>:<to>@<host>:<port>;transport=<t>`, exactly what requestUri() gives a Talkdesk call */
  sipUri: string;
  headers: Record<string, string>;
}

export interface TargetResolution {
  /** undefined: no valid target (the call's `to` is no SIP user part); `problem` says why */
  target?: CcaiTarget;
  problem?: string;
  /** env_vars names whose value now applies to this call */
  applied: JambonzCallSetting[];
  /** one message per env value that was ignored (the instance's setting applies), naming the setting and the rule */
  rejected: string[];
}

// the same rules config/load.ts applies to these settings at start
const TRANSPORTS: readonly SipTransport[] = ['udp', 'tcp', 'tls'];
const SCHEMES = ['sip', 'sips'] as const;
/** as invite-target.ts strips from Talkdesk values: nothing that could break a header line */
const UNSAFE_IN_HEADER = /[\x00-\x1f\x7f]/g;

/**
 * The CCAI target for one jambonz call. Each of JAMBONZ_CALL_SETTINGS present in `envVars` (not undefined, null or
 * '': the portal sends '' for a field left empty) is checked with the config loader's own rule (SettingsReader, the
 * SIP_HEADERS parser, "sips only with tls"); a value that fails is reported in `rejected` and the instance's value
 * stays. The request-URI user is the call's `to` (the number jambonz routed to this application).
 * `source` names where the values came from, in the messages (e.g. `env_vars of jambonz application <sid>`).
 */
export function resolveCcaiTarget(instance: PluginConfig['sip'], envVars: unknown, call: JambonzCall, source: string): TargetResolution {
  const vars = isObject(envVars) ? envVars : {};
  const sip: PluginConfig['sip'] = { ...instance };
  const applied: JambonzCallSetting[] = [];
  const rejected: string[] = [];
  const from: Partial<Record<JambonzCallSetting, true>> = {};

  /** the value checked by `get` (on a reader that sees only this one value), or undefined when unset or rejected */
  function read<T>(name: JambonzCallSetting, get: (r: SettingsReader<JambonzCallSetting>) => T): T | undefined {
    const value = vars[name];
    if (value === undefined || value === null || value === '') return undefined;
    const entry = { type: typeof value === 'number' ? 'number' : 'string', description: name, value };
    const r = new SettingsReader<JambonzCallSetting>({ [name]: entry }, source, {}, new Set());
    const checked = get(r);
    if (r.errors.length > 0) {
      rejected.push(...r.errors);
      return undefined;
    }
    applied.push(name);
    from[name] = true;
    return checked;
  }

  const host = read('CCAI_SIP_HOST', (r) => r.host('CCAI_SIP_HOST'));
  if (host !== undefined) sip.ccaiHost = host;
  const port = read('CCAI_SIP_PORT', (r) => r.integer('CCAI_SIP_PORT', 1, 65535));
  if (port !== undefined) sip.ccaiPort = port;
  const transport = read('CCAI_SIP_TRANSPORT', (r) => r.oneOf('CCAI_SIP_TRANSPORT', TRANSPORTS));
  if (transport !== undefined) sip.ccaiTransport = transport;
  const scheme = read('CCAI_SIP_SCHEME', (r) => r.oneOf('CCAI_SIP_SCHEME', SCHEMES));
  if (scheme !== undefined) sip.ccaiScheme = scheme;
  const headerText = read('SIP_HEADERS', (r) => r.string('SIP_HEADERS'));
  if (headerText !== undefined) {
    const parsed = parseSipHeaders(headerText);
    if (parsed.ok) {
      sip.headers = parsed.value;
    } else {
      rejected.push(...parsed.errors.map((e) => `${e} (in ${source})`));
      drop('SIP_HEADERS');
    }
  }

  // load.ts: "sips requires CCAI_SIP_TRANSPORT=tls". The instance's pair passed it, so dropping the env side fixes it:
  // the env scheme first (it asked for more than the transport gives), then the env transport.
  for (const name of ['CCAI_SIP_SCHEME', 'CCAI_SIP_TRANSPORT'] as const) {
    if (sip.ccaiScheme !== 'sips' || sip.ccaiTransport === 'tls' || !from[name]) continue;
    rejected.push(
      `${name}: sips requires CCAI_SIP_TRANSPORT=tls (got scheme ${sip.ccaiScheme}, transport ${sip.ccaiTransport} ` +
        `with ${name} from ${source}); ignored`,
    );
    if (name === 'CCAI_SIP_SCHEME') sip.ccaiScheme = instance.ccaiScheme;
    else sip.ccaiTransport = instance.ccaiTransport;
    drop(name);
  }

  function drop(name: JambonzCallSetting): void {
    applied.splice(applied.indexOf(name), 1);
    delete from[name];
  }

  const user = call.to;
  if (typeof user !== 'string' || !SIP_USER.test(user)) {
    return { problem: `the call's "to" (${JSON.stringify(user) ?? 'absent'}) is not a SIP user part`, applied, rejected };
  }
  return { target: { sipUri: requestUri(user, sip), headers: dialHeaders(sip.headers, user, call) }, applied, rejected };
}

/**
 * The jambonz ids, then what SIP_HEADERS maps that a jambonz call has: only `sipuri` (the request-URI user). The
 * Talkdesk ids (callSid, streamSid, interactionId, accountSid, botId, accountId) do not exist on a jambonz call, and
 * a jambonz sid in a header named for a Talkdesk one would mislead the bot, so those headers are left out.
 */
function dialHeaders(mapping: PluginConfig['sip']['headers'], user: string, call: JambonzCall): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [field, name] of Object.entries(JAMBONZ_ID_HEADERS)) {
    const value = call[field as keyof typeof JAMBONZ_ID_HEADERS];
    const clean = typeof value === 'string' ? value.replace(UNSAFE_IN_HEADER, '') : '';
    if (clean !== '') headers[name] = clean;
  }
  const taken = new Set(Object.keys(headers).map((n) => n.toLowerCase()));
  for (const [name, value] of Object.entries(talkdeskHeaders(mapping, { sipuri: user }))) {
    if (!taken.has(name.toLowerCase())) headers[name] = value;
  }
  return headers;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
