import { isIP } from 'node:net';
import { readAppJson } from './app-json.js';
import { parseIpRange } from './ip-range.js';
import { parseBots, parseEscalationRules, parseSipHeaders, type Parsed } from './json-settings.js';
import type { PluginConfig, SipTransport } from './schema.js';
import { SIP_USER } from './sip-grammar.js';
import { SettingsReader, type SettingType } from './settings.js';

export { maskObscure } from './app-json.js';

/**
 * Every setting jambonz-app.json must describe, with the type the portal shows. Each is read from, in order: the
 * environment variable of the same name, the file named by `<NAME>_FILE` (for secrets, e.g. BOTS_FILE from a
 * Docker/Kubernetes secret), the entry's `value`, the entry's `default`.
 */
const SETTINGS = {
  LISTEN_HOST: 'string',
  LISTEN_PORT: 'number',
  TLS_CERT_FILE: 'string',
  TLS_KEY_FILE: 'string',
  PUBLIC_HOST: 'string',
  BOTS: 'string',
  TALKDESK_ACCOUNT_ALLOWLIST: 'string',
  TRUSTED_PROXIES: 'string',
  SIP_BACKEND: 'string',
  SIP_BIND_ADDRESS: 'string',
  SIP_PORT: 'number',
  SIP_ADVERTISED_ADDRESS: 'string',
  SIP_FROM_USER: 'string',
  CCAI_SIP_HOST: 'string',
  CCAI_SIP_PORT: 'number',
  CCAI_SIP_TRANSPORT: 'string',
  CCAI_SIP_SCHEME: 'string',
  CCAI_SOURCE_ADDRESSES: 'string',
  CCAI_DNS_SERVERS: 'string',
  CCAI_TARGET_TIMEOUT_MS: 'number',
  SIP_TLS_PORT: 'number',
  SIP_TLS_CERT_FILE: 'string',
  SIP_TLS_KEY_FILE: 'string',
  CCAI_TLS_CA_FILE: 'string',
  CCAI_TLS_VERIFY: 'boolean',
  CCAI_TLS_SERVERNAME: 'string',
  SRTP: 'string',
  DRACHTIO_HOST: 'string',
  DRACHTIO_PORT: 'number',
  DRACHTIO_SECRET: 'string',
  CCAI_SIP_AUTH_USERNAME: 'string',
  CCAI_SIP_AUTH_PASSWORD: 'string',
  CCAI_SIP_AUTH_REALM: 'string',
  DRACHTIO_TLS: 'boolean',
  DRACHTIO_TLS_CA_FILE: 'string',
  JAMBONZ_SERVICE_PATH: 'string',
  JAMBONZ_SERVICE_HOST: 'string',
  JAMBONZ_SERVICE_PORT: 'number',
  JAMBONZ_SERVICE_SOURCES: 'string',
  MAX_CALLS: 'number',
  SHUTDOWN_GRACE_MS: 'number',
  RTP_TIMEOUT_MS: 'number',
  TALKDESK_TIMEOUT_MS: 'number',
  MAX_CALL_MS: 'number',
  AGENT_ASSIST_CALLS: 'string',
  METRICS_HOST: 'string',
  METRICS_PORT: 'number',
  SIP_HEADERS: 'string',
  INVITE_TIMEOUT_MS: 'number',
  RTP_BIND_ADDRESS: 'string',
  RTP_ADVERTISED_ADDRESS: 'string',
  RTP_PORT_MIN: 'number',
  RTP_PORT_MAX: 'number',
  MAX_PLAYOUT_MS: 'number',
  ESCALATION_RULES: 'string',
  DEFAULT_RING_GROUP: 'string',
  START_TIMEOUT_MS: 'number',
  MARK_TIMEOUT_MS: 'number',
  CLOSE_WAIT_MS: 'number',
  TALKDESK_NOT_READING_MS: 'number',
  MAX_FRAME_BYTES: 'number',
  LOG_LEVEL: 'string',
} as const satisfies Record<string, SettingType>;

type SettingName = keyof typeof SETTINGS;

/** The client secret of the example bot shipped in jambonz-app.json; public, so it must never face a network. */
export const EXAMPLE_CLIENT_SECRET = 'EXAMPLE-SECRET-change-me';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TRANSPORTS: readonly SipTransport[] = ['udp', 'tcp', 'tls'];
/** the Talkdesk WebSocket routes (plugin/talkdesk/server.ts): the jambonz service path must not shadow them */
const TALKDESK_PATHS = ['/audiosocket/talkdesk', '/audiosocket/talkdesk/'];
/** one hour: beyond that a value is a unit mistake (seconds typed as ms × 1000), and setTimeout caps at 2^31-1 */
const MAX_TIMEOUT_MS = 3_600_000;
/** a day: no Talkdesk call legitimately streams longer, and it stays far below setTimeout's 2^31-1 ms cap */
const MAX_CALL_MS = 86_400_000;
/** Talkdesk hands ringGroup to the flow as is; a public bridge caps it near 256 (talkdesk-protocol.md §3.4) */
const MAX_RING_GROUP_CHARS = 256;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const SIP_USER_RULE = "must be a SIP user part: letters, digits and -_.!~*'()&=+$,;?/ only";
const MAX_PLAYOUT_RULE = 'must be an integer number of milliseconds between 100 and 5000 (the longest Talkdesk stall to ride out without losing speech)';

/** The settings file `npm start` and the operator's commands read: APP_CONFIG, else jambonz-app.json here. */
export function appConfigFile(env: NodeJS.ProcessEnv): string {
  return env.APP_CONFIG ?? 'jambonz-app.json';
}

export type LoadResult =
  /** warnings: to log at start, e.g. a secret file others can read */
  | { ok: true; config: PluginConfig; appJson: Record<string, unknown>; warnings: string[] }
  | { ok: false; errors: string[] };

/**
 * Read jambonz-app.json (and the environment), check every setting and build the typed config. Never throws: all
 * problems come back together, each naming its setting and how to fix it, so one start-up shows them all.
 */
export function loadConfig(opts: { file: string; env?: NodeJS.ProcessEnv }): LoadResult {
  const read = readAppJson(opts.file);
  if (!read.ok) return read;
  const r = new SettingsReader<SettingName>(read.appJson, opts.file, opts.env ?? process.env, new Set(['BOTS', 'DRACHTIO_SECRET', 'CCAI_SIP_AUTH_PASSWORD']));
  r.checkDeclarations(SETTINGS);

  const timeout = (name: SettingName): number =>
    r.integer(name, 1, MAX_TIMEOUT_MS, `must be an integer number of milliseconds between 1 and ${MAX_TIMEOUT_MS}`);
  const json = <T>(name: SettingName, parse: (text: string) => Parsed<T>): T | undefined => {
    const text = r.string(name);
    if (text === '') return undefined;
    const parsed = parse(text);
    if (parsed.ok) return parsed.value;
    r.errors.push(...parsed.errors);
    return undefined;
  };

  const listenHost = r.ip('LISTEN_HOST');
  const listenPort = r.integer('LISTEN_PORT', 0, 65535, 'must be an integer between 0 (any free port) and 65535');
  const tlsCertFile = r.readableFile('TLS_CERT_FILE');
  const tlsKeyFile = r.readableFile('TLS_KEY_FILE', { secret: true });
  if ((tlsCertFile === '') !== (tlsKeyFile === '')) {
    const missing = tlsCertFile === '' ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE';
    r.fail(missing, 'set TLS_CERT_FILE and TLS_KEY_FILE together for wss://, or neither for plain ws://');
  }
  const ipRanges = (name: SettingName): string[] => {
    const entries = r.list(name);
    const notRanges = entries.filter((entry) => !parseIpRange(entry).ok);
    if (notRanges.length > 0) {
      r.fail(name, `${notRanges.map((e) => `'${e}'`).join(', ')}: not an IP address or a CIDR range such as 10.0.0.0/8 (comma-separated)`);
    }
    return entries;
  };
  const trustedProxies = ipRanges('TRUSTED_PROXIES');
  const bots = json('BOTS', parseBots) ?? [];
  const usesExampleSecret = bots.some((b) => b.clientSecrets.includes(EXAMPLE_CLIENT_SECRET));
  if (usesExampleSecret && listenHost !== '' && !isLoopback(listenHost)) {
    r.fail(
      'LISTEN_HOST',
      `${listenHost} is reachable from the network, but BOTS still holds the example client secret, with which ` +
        'anyone can sign a valid token; put your Kore bot credentials in BOTS (or BOTS_FILE), or listen on 127.0.0.1',
    );
  }

  const sipBind = r.ipv4('SIP_BIND_ADDRESS');
  const rtpBind = r.ipv4('RTP_BIND_ADDRESS');
  // even: RTP on the even port, RTCP on the odd one above it (RFC 3550 §11)
  const rtpPortMin = r.integer('RTP_PORT_MIN', 1024, 65534, 'must be an even integer between 1024 and 65534', isEven);
  const rtpPortMax = r.integer('RTP_PORT_MAX', 1025, 65535);
  // a NaN (either bound already reported) compares false: no second error about the same value
  if (rtpPortMax <= rtpPortMin) {
    r.fail(
      'RTP_PORT_MAX',
      `must be greater than RTP_PORT_MIN (${rtpPortMin}) so the range holds at least one RTP/RTCP port pair (got ${rtpPortMax})`,
    );
  }

  const sipBackend = r.oneOf('SIP_BACKEND', ['embedded', 'drachtio'] as const);
  const ccaiTransport = r.oneOf('CCAI_SIP_TRANSPORT', TRANSPORTS);
  const ccaiScheme = r.oneOf('CCAI_SIP_SCHEME', ['sip', 'sips'] as const);
  if (ccaiScheme === 'sips' && ccaiTransport !== 'tls') {
    r.fail('CCAI_SIP_SCHEME', `sips requires CCAI_SIP_TRANSPORT=tls (got ${ccaiTransport}); use sip, or switch to tls`);
  }
  const sipTlsCertFile = r.readableFile('SIP_TLS_CERT_FILE');
  const sipTlsKeyFile = r.readableFile('SIP_TLS_KEY_FILE', { secret: true });
  if ((sipTlsCertFile === '') !== (sipTlsKeyFile === '')) {
    const missing = sipTlsCertFile === '' ? 'SIP_TLS_CERT_FILE' : 'SIP_TLS_KEY_FILE';
    r.fail(missing, 'set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE together, or neither');
  }
  const drachtioSecret = r.string('DRACHTIO_SECRET', { allowEmpty: true });
  if (sipBackend === 'drachtio' && drachtioSecret === '') {
    r.fail('DRACHTIO_SECRET', 'required with SIP_BACKEND=drachtio: the admin secret of the gateway\'s drachtio-server');
  }
  const servicePath = r.checked(
    'JAMBONZ_SERVICE_PATH',
    (v) => /^\/[A-Za-z0-9._~\-/]*$/.test(v) && !TALKDESK_PATHS.includes(v),
    'must be a URL path such as /ccai, other than the Talkdesk paths, or empty (the default) to leave the jambonz service off',
    { allowEmpty: true },
  );
  const serviceSources = ipRanges('JAMBONZ_SERVICE_SOURCES');
  if (servicePath !== '' && serviceSources.length === 0) {
    r.fail('JAMBONZ_SERVICE_SOURCES', 'must list the addresses or ranges of the jambonz feature servers (e.g. 127.0.0.1, 10.0.0.0/24) when JAMBONZ_SERVICE_PATH is set: the service has no other authentication');
  }

  const authUsername = r.string('CCAI_SIP_AUTH_USERNAME', { allowEmpty: true });
  const authPassword = r.string('CCAI_SIP_AUTH_PASSWORD', { allowEmpty: true });
  const authRealm = r.string('CCAI_SIP_AUTH_REALM', { allowEmpty: true });
  if ((authUsername === '') !== (authPassword === '')) {
    const missing = authUsername === '' ? 'CCAI_SIP_AUTH_USERNAME' : 'CCAI_SIP_AUTH_PASSWORD';
    r.fail(missing, 'set CCAI_SIP_AUTH_USERNAME and CCAI_SIP_AUTH_PASSWORD (or CCAI_SIP_AUTH_PASSWORD_FILE) together, or neither');
  }

  const inviteTimeoutMs = timeout('INVITE_TIMEOUT_MS');
  const targetTimeout = timeout('CCAI_TARGET_TIMEOUT_MS');
  // A short INVITE_TIMEOUT_MS is a fair choice for a single CCAI target, so this only warns: refusing to start over a
  // default the operator never set would be worse. A NaN (either already reported) compares false.
  if (targetTimeout >= inviteTimeoutMs) {
    r.warnings.push(
      `CCAI_TARGET_TIMEOUT_MS (${targetTimeout}) is not shorter than INVITE_TIMEOUT_MS (${inviteTimeoutMs}): a CCAI target that does not answer at all ends the call instead of the next target being tried; set it lower if DNS gives CCAI several targets`,
    );
  }

  const config: PluginConfig = {
    listen: { host: listenHost, port: listenPort, trustedProxies },
    bots,
    usesExampleSecret,
    talkdeskAccountAllowlist: r.list('TALKDESK_ACCOUNT_ALLOWLIST'),
    sip: {
      backend: sipBackend,
      bindAddress: sipBind,
      port: r.integer('SIP_PORT', 0, 65535, 'must be an integer between 0 (any free port) and 65535'),
      advertisedAddress: advertised(r, 'SIP_ADVERTISED_ADDRESS', 'SIP_BIND_ADDRESS', sipBind),
      ccaiHost: r.host('CCAI_SIP_HOST'),
      ...optionalPort(r.optionalInteger('CCAI_SIP_PORT', 1, 65535, 'must be an integer between 1 and 65535, or empty to find the port by DNS (RFC 3263 SRV)')),
      dnsServers: dnsServers(r),
      targetTimeoutMs: targetTimeout,
      ccaiTransport,
      ccaiScheme,
      ccaiSourceAddresses: ipRanges('CCAI_SOURCE_ADDRESSES'),
      fromUser: r.checked('SIP_FROM_USER', (v) => SIP_USER.test(v), SIP_USER_RULE),
      headers: json('SIP_HEADERS', parseSipHeaders) ?? {},
      inviteTimeoutMs,
      ...(authUsername === '' ? {} : { auth: { username: authUsername, password: authPassword, ...optional('realm', authRealm) } }),
      tls: {
        port: r.integer('SIP_TLS_PORT', 0, 65535, 'must be an integer between 0 (any free port) and 65535'),
        ...optional('certFile', sipTlsCertFile),
        ...optional('keyFile', sipTlsKeyFile),
        ...optional('caFile', r.readableFile('CCAI_TLS_CA_FILE')),
        verify: r.boolean('CCAI_TLS_VERIFY'),
        ...optional('serverName', r.host('CCAI_TLS_SERVERNAME', { allowEmpty: true })),
      },
    },
    drachtio: {
      host: r.host('DRACHTIO_HOST'),
      port: r.integer('DRACHTIO_PORT', 1, 65535),
      secret: drachtioSecret,
      tls: r.boolean('DRACHTIO_TLS'),
      ...optional('caFile', r.readableFile('DRACHTIO_TLS_CA_FILE')),
    },
    jambonz: {
      servicePath,
      host: r.ip('JAMBONZ_SERVICE_HOST'),
      port: r.integer('JAMBONZ_SERVICE_PORT', 0, 65535, 'must be an integer between 0 (any free port) and 65535'),
      sources: serviceSources,
    },
    rtp: {
      bindAddress: rtpBind,
      advertisedAddress: advertised(r, 'RTP_ADVERTISED_ADDRESS', 'RTP_BIND_ADDRESS', rtpBind),
      portMin: rtpPortMin,
      portMax: rtpPortMax,
      maxPlayoutMs: r.integer('MAX_PLAYOUT_MS', 100, 5000, MAX_PLAYOUT_RULE),
      srtp: r.oneOf('SRTP', ['off', 'optional', 'required'] as const),
    },
    escalation: {
      rules: json('ESCALATION_RULES', parseEscalationRules) ?? [],
      defaultRingGroup: r.checked(
        'DEFAULT_RING_GROUP',
        (v) => v.length <= MAX_RING_GROUP_CHARS && !CONTROL_CHARS.test(v),
        `must be a ring group name of at most ${MAX_RING_GROUP_CHARS} characters without control characters`,
      ),
    },
    talkdesk: {
      startTimeoutMs: timeout('START_TIMEOUT_MS'),
      markTimeoutMs: timeout('MARK_TIMEOUT_MS'),
      closeWaitMs: timeout('CLOSE_WAIT_MS'),
      notReadingMs: timeout('TALKDESK_NOT_READING_MS'),
      maxFrameBytes: r.integer('MAX_FRAME_BYTES', 1024, 16_777_216),
    },
    limits: {
      maxCalls: r.integer('MAX_CALLS', 1, 100_000),
      shutdownGraceMs: timeout('SHUTDOWN_GRACE_MS'),
      rtpTimeoutMs: timeout('RTP_TIMEOUT_MS'),
      talkdeskTimeoutMs: timeout('TALKDESK_TIMEOUT_MS'),
      maxCallMs: r.integer('MAX_CALL_MS', 1000, MAX_CALL_MS, `must be an integer number of milliseconds between 1000 and ${MAX_CALL_MS} (24 h)`),
    },
    agentAssist: { calls: r.oneOf('AGENT_ASSIST_CALLS', ['two', 'one'] as const) },
    metrics: {
      host: r.ip('METRICS_HOST'),
      port: r.integer('METRICS_PORT', 0, 65535, 'must be an integer between 0 (any free port) and 65535'),
    },
    logLevel: r.oneOf('LOG_LEVEL', LOG_LEVELS),
  };
  const publicHost = r.authority('PUBLIC_HOST', { allowEmpty: true });
  if (publicHost !== '') config.listen.publicHost = publicHost;
  if (tlsCertFile !== '') {
    config.listen.tlsCertFile = tlsCertFile;
    config.listen.tlsKeyFile = tlsKeyFile;
  }

  if (r.errors.length > 0) return { ok: false, errors: r.errors };
  return { ok: true, config, appJson: read.appJson, warnings: r.warnings };
}

/**
 * The address peers are told to use. Empty means the bind address, which must then be one they can reach: a
 * wildcard bind (0.0.0.0) in a Via or an SDP `c=` line would send their traffic nowhere.
 */
function advertised(r: SettingsReader<SettingName>, name: SettingName, bindName: SettingName, bind: string): string {
  const value = r.ipv4(name, { allowEmpty: true });
  if (value !== '') return value;
  if (bind === '0.0.0.0') {
    r.fail(name, `required while ${bindName} is 0.0.0.0: give the IPv4 address the CCAI side can reach`);
  }
  return bind;
}

/** CCAI_SIP_PORT: absent from the config when unset, so the request-URI carries none */
function optionalPort(port: number | undefined): { ccaiPort?: number } {
  return port === undefined ? {} : { ccaiPort: port };
}

/**
 * CCAI_DNS_SERVERS: `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port` entries, the forms node's dns.Resolver#setServers takes
 * (checked here so a typo fails at start, not at the first call). Empty: the system's resolver configuration.
 */
function dnsServers(r: SettingsReader<SettingName>): string[] {
  const entries = r.list('CCAI_DNS_SERVERS');
  const wrong = entries.filter((entry) => !isDnsServer(entry));
  if (wrong.length > 0) {
    r.fail('CCAI_DNS_SERVERS', `${wrong.map((e) => `'${e}'`).join(', ')}: not an IP address with an optional port, such as 10.0.0.2, 10.0.0.2:5353 or [fd00::2]:53 (comma-separated)`);
  }
  return entries;
}

function isDnsServer(entry: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry);
  const withPort = /^([^:]+):(\d{1,5})$/.exec(entry);
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : withPort ? [withPort[1]!, withPort[2]] : [entry, undefined];
  const family = isIP(host);
  const portOk = port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
  return portOk && (bracketed ? family === 6 : withPort ? family === 4 : family !== 0);
}

/** `{ [key]: value }` for a non-empty value, `{}` for an empty one: unset optional settings stay absent */
function optional<K extends string>(key: K, value: string): Partial<Record<K, string>> {
  return value === '' ? {} : ({ [key]: value } as Record<K, string>);
}

function isEven(n: number): boolean {
  return n % 2 === 0;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}
