import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CLIENT_SECRET, loadConfig, maskObscure } from '../../../config/load.js';
import { MAX_SECRETS_PER_BOT } from '../../../config/json-settings.js';

const SHIPPED = join(import.meta.dirname, '../../../jambonz-app.json');
const shipped = (): Record<string, Record<string, unknown>> => JSON.parse(readFileSync(SHIPPED, 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'load-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** a file beside the test, e.g. a copy of the shipped app.json with some entries changed */
function writeTemp(content: string): string {
  const file = join(dir, `f${n++}`);
  writeFileSync(file, content);
  return file;
}
function withEntries(change: (app: Record<string, Record<string, unknown>>) => void): string {
  const app = shipped();
  change(app);
  return writeTemp(JSON.stringify(app));
}
function errorsFor(env: NodeJS.ProcessEnv, file = SHIPPED): string[] {
  const result = loadConfig({ file, env });
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.errors;
}
function configFor(env: NodeJS.ProcessEnv, file = SHIPPED) {
  const result = loadConfig({ file, env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

describe('the shipped jambonz-app.json', () => {
  it('passes node-client-ws validateAppConfig', () => {
    const { validateAppConfig } = createRequire(import.meta.url)('@jambonz/node-client-ws') as {
      validateAppConfig(c: unknown): { isValid: boolean; errors: string[] };
    };
    expect(validateAppConfig(shipped())).toEqual({ isValid: true, errors: [] });
  });

  it('uses only portal-safe keys and gives every setting a real description', () => {
    for (const [key, entry] of Object.entries(shipped())) {
      expect(key).toMatch(/^[A-Za-z0-9_]+$/);
      expect(String(entry['description']).length).toBeGreaterThan(30);
    }
  });

  it('loads with the documented defaults', () => {
    const result = loadConfig({ file: SHIPPED, env: {} });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.appJson).toEqual(shipped());
    expect(result.config).toMatchObject({
      listen: { host: '127.0.0.1', port: 8080 },
      usesExampleSecret: true,
      talkdeskAccountAllowlist: [],
      sip: {
        backend: 'embedded', bindAddress: '127.0.0.1', port: 5080, advertisedAddress: '127.0.0.1',
        ccaiHost: '127.0.0.1', ccaiTransport: 'udp', fromUser: 'talkdesk-gw', inviteTimeoutMs: 15000,
        dnsServers: [], targetTimeoutMs: 4000,
        headers: {
          'X-Talkdesk-Call-Sid': 'callSid', 'X-Talkdesk-Stream-Sid': 'streamSid',
          'X-Talkdesk-Interaction-Id': 'interactionId', 'X-Talkdesk-Account-Sid': 'accountSid',
          'X-Kore-Bot-Id': 'botId', 'X-Kore-Account-Id': 'accountId',
        },
      },
      rtp: { bindAddress: '127.0.0.1', advertisedAddress: '127.0.0.1', portMin: 20000, portMax: 20999, maxPlayoutMs: 1000 },
      escalation: { defaultRingGroup: 'agents' },
      talkdesk: { startTimeoutMs: 10000, markTimeoutMs: 3000, closeWaitMs: 2000, notReadingMs: 10000, maxFrameBytes: 65536 },
      logLevel: 'info',
    });
    expect(result.config.listen.tlsCertFile).toBeUndefined();
    // no port: the request-URI names none, and CCAI is found by NAPTR/SRV (RFC 3263)
    expect(result.config.sip).not.toHaveProperty('ccaiPort');
    expect(result.config.escalation.rules.map((r) => r.header)).toEqual(['X-Escalation-Data', 'User-to-User', 'X-Escalate', 'Reason']);
  });

  it('ships a clearly marked example bot whose secret is the one the loader watches for', () => {
    const [bot] = configFor({}).bots;
    expect(bot).toEqual({ botId: 'st-00000000-0000-0000-0000-000000000000', clientId: 'cs-example-client-id', clientSecrets: [EXAMPLE_CLIENT_SECRET] });
    expect(shipped()['BOTS']!['obscure']).toBe(true);
  });

  it('accepts every value of each enum it declares (with the settings that value needs)', () => {
    const needs: Record<string, Record<string, string>> = {
      'SIP_BACKEND=drachtio': { DRACHTIO_SECRET: 'cymru' },
      'CCAI_SIP_SCHEME=sips': { CCAI_SIP_TRANSPORT: 'tls' },
    };
    for (const [name, entry] of Object.entries(shipped())) {
      for (const value of (entry['enum'] as string[] | undefined) ?? []) {
        const env = { [name]: value, ...needs[`${name}=${value}`] };
        expect(loadConfig({ file: SHIPPED, env }).ok, `${name}=${value}`).toBe(true);
      }
    }
  });

  it('a value that needs another setting says which', () => {
    expect(errorsFor({ SIP_BACKEND: 'drachtio' })).toEqual([expect.stringMatching(/^DRACHTIO_SECRET: required with SIP_BACKEND=drachtio/)]);
    expect(errorsFor({ CCAI_SIP_SCHEME: 'sips' })).toEqual([expect.stringMatching(/^CCAI_SIP_SCHEME: sips requires CCAI_SIP_TRANSPORT=tls/)]);
    expect(errorsFor({ SIP_TLS_CERT_FILE: SHIPPED })).toEqual([expect.stringMatching(/^SIP_TLS_KEY_FILE: set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE together/)]);
    expect(errorsFor({ CCAI_TLS_VERIFY: 'yes' })).toEqual([expect.stringMatching(/^CCAI_TLS_VERIFY: must be true or false \(got "yes"/)]);
    expect(errorsFor({ JAMBONZ_SERVICE_PATH: '/audiosocket/talkdesk' })).toEqual([expect.stringMatching(/^JAMBONZ_SERVICE_PATH: must be a URL path/)]);
    expect(errorsFor({ DRACHTIO_SECRET: 'x', SIP_BACKEND: 'drachtio', DRACHTIO_TLS: 'maybe' })).toEqual([expect.stringMatching(/^DRACHTIO_TLS: must be true or false/)]);
  });

  it('the admission, timeout, agent-assist and metrics settings load typed, with their defaults', () => {
    const config = configFor({ MAX_CALLS: '2', AGENT_ASSIST_CALLS: 'one' });
    expect(config.limits).toEqual({ maxCalls: 2, shutdownGraceMs: 30000, rtpTimeoutMs: 10000, talkdeskTimeoutMs: 10000, maxCallMs: 7200000 });
    expect(config.agentAssist).toEqual({ calls: 'one' });
    expect(config.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(errorsFor({ MAX_CALL_MS: '90000000' })).toEqual([expect.stringMatching(/^MAX_CALL_MS: must be an integer number of milliseconds between 1000 and 86400000/)]);
    expect(errorsFor({ MAX_CALLS: '0' })).toEqual([expect.stringMatching(/^MAX_CALLS: must be an integer between 1 and 100000/)]);
  });

  it('digest credentials: none by default; username and password together (the password also from _FILE), realm optional; never echoed', () => {
    expect(configFor({}).sip.auth).toBeUndefined();
    expect(configFor({ CCAI_SIP_AUTH_USERNAME: 'gw', CCAI_SIP_AUTH_PASSWORD: 'pw' }).sip.auth).toEqual({ username: 'gw', password: 'pw' });
    const file = writeTemp('from-a-file');
    chmodSync(file, 0o600);
    expect(configFor({ CCAI_SIP_AUTH_USERNAME: 'gw', CCAI_SIP_AUTH_PASSWORD_FILE: file, CCAI_SIP_AUTH_REALM: 'ccai.example.com' }).sip.auth).toEqual({
      username: 'gw',
      password: 'from-a-file',
      realm: 'ccai.example.com',
    });
    expect(errorsFor({ CCAI_SIP_AUTH_USERNAME: 'gw' })).toEqual([expect.stringMatching(/^CCAI_SIP_AUTH_PASSWORD: set CCAI_SIP_AUTH_USERNAME and CCAI_SIP_AUTH_PASSWORD/)]);
    const refused = errorsFor({ CCAI_SIP_AUTH_PASSWORD: 'hunter2' });
    expect(refused).toEqual([expect.stringMatching(/^CCAI_SIP_AUTH_USERNAME: set CCAI_SIP_AUTH_USERNAME and CCAI_SIP_AUTH_PASSWORD/)]);
    expect(refused.join()).not.toContain('hunter2');
    expect(configFor({ CCAI_SIP_AUTH_USERNAME: 'gw', CCAI_SIP_AUTH_PASSWORD: 'pw', SIP_BACKEND: 'drachtio', DRACHTIO_SECRET: 'x' }).sip.auth).toEqual({ username: 'gw', password: 'pw' });
  });

  it('the TLS, SRTP, drachtio and portal settings load typed, with their defaults', () => {
    const config = configFor({ CCAI_TLS_VERIFY: 'false', CCAI_TLS_SERVERNAME: 'ccai.example.com', SRTP: 'required' });
    expect(config.sip.tls).toEqual({ port: 5081, verify: false, serverName: 'ccai.example.com' });
    expect(config.sip.ccaiScheme).toBe('sip');
    expect(config.rtp.srtp).toBe('required');
    expect(config.drachtio).toEqual({ host: '127.0.0.1', port: 9022, secret: '', tls: false });
    expect(config.jambonz).toEqual({ servicePath: '', host: '127.0.0.1', port: 8081, sources: ['127.0.0.1', '::1'] });
  });

  it('the jambonz service is off by default; turned on, it needs the sources it may serve', () => {
    expect(configFor({ JAMBONZ_SERVICE_PATH: '/ccai', JAMBONZ_SERVICE_SOURCES: '10.0.0.0/24' }).jambonz).toEqual({
      servicePath: '/ccai', host: '127.0.0.1', port: 8081, sources: ['10.0.0.0/24'],
    });
    expect(errorsFor({ JAMBONZ_SERVICE_PATH: '/ccai', JAMBONZ_SERVICE_SOURCES: '' })).toEqual([
      expect.stringMatching(/^JAMBONZ_SERVICE_SOURCES: must list the addresses or ranges of the jambonz feature servers/),
    ]);
    expect(errorsFor({ JAMBONZ_SERVICE_SOURCES: 'jambonz.local' })).toEqual([expect.stringMatching(/^JAMBONZ_SERVICE_SOURCES: 'jambonz.local': not an IP address or a CIDR range/)]);
    expect(errorsFor({ JAMBONZ_SERVICE_PORT: '70000' })).toEqual([expect.stringMatching(/^JAMBONZ_SERVICE_PORT: must be an integer between 0/)]);
  });
});

describe('where a value comes from', () => {
  it('an environment variable overrides the file', () => {
    const config = configFor({ LISTEN_PORT: '9090', CCAI_SIP_TRANSPORT: 'tls', TALKDESK_ACCOUNT_ALLOWLIST: ' acc1, ,acc2 ' });
    expect(config.listen.port).toBe(9090);
    expect(config.sip.ccaiTransport).toBe('tls');
    expect(config.talkdeskAccountAllowlist).toEqual(['acc1', 'acc2']);
  });

  it('the file\'s value overrides its default', () => {
    const config = configFor({}, withEntries((app) => { app['SIP_PORT']!['value'] = 5999; app['SIP_FROM_USER']!['value'] = 'gw'; }));
    expect(config.sip.port).toBe(5999);
    expect(config.sip.fromUser).toBe('gw');
  });

  it('<NAME>_FILE supplies a secret from a file, trimmed, and the example secret is then no longer in use', () => {
    const bots = writeTemp('[{"botId":"st-1","clientId":"cs-1","clientSecret":"s3cret"}]\n');
    const config = configFor({ BOTS_FILE: bots, LISTEN_HOST: '0.0.0.0' });
    expect(config.bots).toEqual([{ botId: 'st-1', clientId: 'cs-1', clientSecrets: ['s3cret'] }]);
    expect(config.usesExampleSecret).toBe(false);
    expect(config.listen.host).toBe('0.0.0.0');
  });

  it.each([
    ['', undefined],
    ['gw.example.com', 'gw.example.com'],
    ['gw.example.com:8443', 'gw.example.com:8443'],
    ['203.0.113.7:443', '203.0.113.7:443'],
  ])('PUBLIC_HOST %j is the Voice Stream URL\'s host: %j', (value, publicHost) => {
    expect(configFor({ PUBLIC_HOST: value }).listen.publicHost).toBe(publicHost);
  });

  it('the plain environment variable wins over <NAME>_FILE', () => {
    const config = configFor({ SIP_FROM_USER: 'direct', SIP_FROM_USER_FILE: writeTemp('from-file') });
    expect(config.sip.fromUser).toBe('direct');
  });

  it('an unreadable <NAME>_FILE is an error naming it', () => {
    expect(errorsFor({ BOTS_FILE: join(dir, 'missing') })).toEqual([expect.stringMatching(/^BOTS: cannot read BOTS_FILE=.*missing \(ENOENT\)/)]);
  });

  it('empty advertised addresses fall back to the bind addresses', () => {
    const config = configFor({ SIP_BIND_ADDRESS: '10.0.0.5', RTP_BIND_ADDRESS: '10.0.0.6' });
    expect(config.sip.advertisedAddress).toBe('10.0.0.5');
    expect(config.rtp.advertisedAddress).toBe('10.0.0.6');
  });

  it('TLS is on when both files are set and readable', () => {
    const cert = writeTemp('cert');
    const key = writeTemp('key');
    expect(configFor({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }).listen).toMatchObject({ tlsCertFile: cert, tlsKeyFile: key });
  });
});

describe('the settings file itself', () => {
  it('a missing file is an error naming the path and the fix', () => {
    expect(errorsFor({}, join(dir, 'nope.json'))).toEqual([expect.stringMatching(/nope\.json: cannot read the settings file \(ENOENT\); pass the path of jambonz-app.json/)]);
  });

  it('bad JSON is an error naming the path', () => {
    expect(errorsFor({}, writeTemp('{"LISTEN_HOST": {,}'))).toEqual([expect.stringMatching(/: not valid JSON \(.*\); fix the syntax/)]);
  });

  it('a JSON array is not a settings file', () => {
    expect(errorsFor({}, writeTemp('[]'))[0]).toMatch(/must hold a JSON object/);
  });

  it('an entry without a description fails node-client-ws validation', () => {
    const errors = errorsFor({}, withEntries((app) => { delete app['LISTEN_PORT']!['description']; }));
    expect(errors.join('\n')).toMatch(/description.*LISTEN_PORT|LISTEN_PORT.*description/);
  });

  it('an unknown key (a likely typo) is an error listing the known ones', () => {
    const errors = errorsFor({}, withEntries((app) => { app['LISTEN_PROT'] = { type: 'number', description: 'typo' }; }));
    expect(errors).toEqual([expect.stringMatching(/^LISTEN_PROT: unknown setting .*known settings are LISTEN_HOST, LISTEN_PORT/)]);
  });

  it('service path keys belong to node-client-ws and are left alone', () => {
    const file = withEntries((app) => { app['/ccai'] = { GREETING: { type: 'string', description: 'per service' } }; });
    expect(loadConfig({ file, env: {} }).ok).toBe(true);
  });

  it('a changed type is an error', () => {
    expect(errorsFor({}, withEntries((app) => { app['LISTEN_PORT']!['type'] = 'string'; }))).toEqual([
      expect.stringMatching(/^LISTEN_PORT: .* declares type "string", but this setting is a number/),
    ]);
  });

  it('a setting with neither value nor default nor env var is reported as not set', () => {
    const errors = errorsFor({}, withEntries((app) => { delete app['SIP_FROM_USER']!['default']; }));
    expect(errors).toEqual([expect.stringMatching(/^SIP_FROM_USER: not set; give it a "value" in .* or set the environment variable SIP_FROM_USER/)]);
  });
});

describe('CCAI_TARGET_TIMEOUT_MS against INVITE_TIMEOUT_MS', () => {
  it('warns, rather than refusing to start, when a silent CCAI target could never be left for the next', () => {
    const short = loadConfig({ file: SHIPPED, env: { INVITE_TIMEOUT_MS: '1000' } });
    expect(short.ok).toBe(true);
    expect(short.ok && short.warnings).toEqual([
      'CCAI_TARGET_TIMEOUT_MS (4000) is not shorter than INVITE_TIMEOUT_MS (1000): a CCAI target that does not answer at all ends the call instead of the next target being tried; set it lower if DNS gives CCAI several targets',
    ]);
    const fine = loadConfig({ file: SHIPPED, env: { INVITE_TIMEOUT_MS: '1000', CCAI_TARGET_TIMEOUT_MS: '500' } });
    expect(fine.ok && fine.warnings).toEqual([]);
  });
});

describe('each kind of bad value is an error naming the setting and what is allowed', () => {
  it.each([
    ['LISTEN_PORT', '12a', /^LISTEN_PORT: must be an integer between 0 \(any free port\) and 65535 \(got "12a" from environment variable LISTEN_PORT\)$/],
    ['LISTEN_PORT', '1e3', /^LISTEN_PORT: must be an integer/],
    ['LISTEN_PORT', ' 80', /^LISTEN_PORT: must be an integer/],
    ['LISTEN_PORT', '-1', /^LISTEN_PORT: must be an integer between 0 \(any free port\) and 65535/],
    ['SIP_PORT', '65536', /^SIP_PORT: must be an integer between 0 \(any free port\) and 65535/],
    ['CCAI_SIP_PORT', '0', /^CCAI_SIP_PORT: must be an integer between 1 and 65535, or empty to find the port by DNS \(RFC 3263 SRV\) \(got "0"/],
    ['CCAI_DNS_SERVERS', '10.0.0.2,dns.example.com', /^CCAI_DNS_SERVERS: 'dns.example.com': not an IP address with an optional port/],
    ['CCAI_DNS_SERVERS', '10.0.0.2:70000', /^CCAI_DNS_SERVERS: '10.0.0.2:70000': not an IP address/],
    ['CCAI_DNS_SERVERS', '[10.0.0.2]:53', /^CCAI_DNS_SERVERS: '\[10.0.0.2\]:53'/],
    ['RTP_PORT_MIN', '2001', /^RTP_PORT_MIN: must be an even integer between 1024 and 65534 \(got "2001"/],
    ['RTP_PORT_MIN', '80', /^RTP_PORT_MIN: must be an even integer between 1024 and 65534/],
    ['RTP_PORT_MAX', '20000', /^RTP_PORT_MAX: must be greater than RTP_PORT_MIN \(20000\)/],
    ['INVITE_TIMEOUT_MS', '0', /^INVITE_TIMEOUT_MS: must be an integer number of milliseconds between 1 and/],
    ['START_TIMEOUT_MS', '-5', /^START_TIMEOUT_MS: must be an integer number of milliseconds/],
    ['MARK_TIMEOUT_MS', '3s', /^MARK_TIMEOUT_MS: must be an integer number of milliseconds/],
    ['CLOSE_WAIT_MS', '99999999999', /^CLOSE_WAIT_MS: must be an integer number of milliseconds/],
    ['MAX_PLAYOUT_MS', '50', /^MAX_PLAYOUT_MS: must be an integer number of milliseconds between 100 and 5000/],
    ['MAX_FRAME_BYTES', '100', /^MAX_FRAME_BYTES: must be an integer between 1024 and 16777216/],
    ['SIP_BACKEND', 'kamailio', /^SIP_BACKEND: must be one of embedded, drachtio \(got "kamailio"/],
    ['CCAI_SIP_TRANSPORT', 'UDP', /^CCAI_SIP_TRANSPORT: must be one of udp, tcp, tls/],
    ['LOG_LEVEL', 'verbose', /^LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent/],
    ['LISTEN_HOST', 'localhost', /^LISTEN_HOST: must be an IP address/],
    ['PUBLIC_HOST', 'wss://gw.example.com', /^PUBLIC_HOST: must be a host name or IPv4 address with an optional :port, such as gw\.example\.com or gw\.example\.com:8443, or empty \(got "wss:/],
    ['PUBLIC_HOST', 'gw.example.com/talkdesk', /^PUBLIC_HOST: must be a host name/],
    ['PUBLIC_HOST', 'gw.example.com:0', /^PUBLIC_HOST: must be a host name/],
    ['PUBLIC_HOST', 'gw.example.com:65536', /^PUBLIC_HOST: must be a host name/],
    ['PUBLIC_HOST', 'gw_1.example.com', /^PUBLIC_HOST: must be a host name/],
    ['SIP_BIND_ADDRESS', '10.0.0.256', /^SIP_BIND_ADDRESS: must be an IPv4 address such as 127.0.0.1 \(got "10.0.0.256"/],
    ['SIP_BIND_ADDRESS', '', /^SIP_BIND_ADDRESS: must not be empty/],
    ['RTP_ADVERTISED_ADDRESS', 'gw.example.com', /^RTP_ADVERTISED_ADDRESS: must be an IPv4 address such as 127.0.0.1, or empty/],
    ['CCAI_SIP_HOST', 'bad host', /^CCAI_SIP_HOST: must be an IPv4 address or a DNS host name/],
    ['SIP_FROM_USER', 'gw@host', /^SIP_FROM_USER: must be a SIP user part/],
    ['DEFAULT_RING_GROUP', 'a\nb', /^DEFAULT_RING_GROUP: must be a ring group name of at most 256 characters without control characters/],
    ['TLS_CERT_FILE', '/no/such/cert.pem', /^TLS_CERT_FILE: cannot read \/no\/such\/cert.pem \(ENOENT\)/],
  ])('%s=%j', (name, value, expected) => {
    expect(errorsFor({ [name]: value })).toContainEqual(expect.stringMatching(expected));
  });

  it('a CCAI host name is fine', () => {
    expect(configFor({ CCAI_SIP_HOST: 'ccai.example.com' }).sip.ccaiHost).toBe('ccai.example.com');
  });

  it('a number setting given as a JSON string in the file is coerced strictly too', () => {
    expect(configFor({}, withEntries((app) => { app['LISTEN_PORT']!['value'] = '8443'; })).listen.port).toBe(8443);
    expect(errorsFor({}, withEntries((app) => { app['LISTEN_PORT']!['value'] = 80.5; }))).toEqual([
      expect.stringMatching(/^LISTEN_PORT: must be an integer between 0 \(any free port\) and 65535 \(got "80.5" from "value" in /),
    ]);
  });

  it('a string setting given a number in the file is an error, not a silent conversion', () => {
    expect(errorsFor({}, withEntries((app) => { app['SIP_FROM_USER']!['value'] = 1234; }))).toEqual([
      expect.stringMatching(/^SIP_FROM_USER: must be a string \(got "1234"/),
    ]);
  });

  it('CCAI_SIP_PORT may be unset (DNS finds CCAI), CCAI_DNS_SERVERS takes ip and ip:port entries (none: the system\'s)', () => {
    expect(configFor({ CCAI_SIP_PORT: '5061' }).sip.ccaiPort).toBe(5061);
    expect(configFor({ CCAI_SIP_PORT: '' }).sip.ccaiPort).toBeUndefined();
    const servers = ['127.0.0.1:5353', '10.0.0.2', '[fd00::2]:53', '[::1]', 'fd00::3'];
    expect(configFor({ CCAI_DNS_SERVERS: servers.join(', ') }).sip.dnsServers).toEqual(servers);
    expect(configFor({ CCAI_TARGET_TIMEOUT_MS: '1500' }).sip.targetTimeoutMs).toBe(1500);
  });

  it('CCAI_SOURCE_ADDRESSES takes addresses and CIDR ranges (none by default); anything else fails naming it', () => {
    expect(configFor({ CCAI_SOURCE_ADDRESSES: '10.20.0.0/16, 203.0.113.5' }).sip.ccaiSourceAddresses).toEqual(['10.20.0.0/16', '203.0.113.5']);
    expect(configFor({}).sip.ccaiSourceAddresses).toEqual([]);
    expect(errorsFor({ CCAI_SOURCE_ADDRESSES: '10.20.0.0/16, ccai.example.com' })).toEqual([
      "CCAI_SOURCE_ADDRESSES: 'ccai.example.com': not an IP address or a CIDR range such as 10.0.0.0/8 (comma-separated)",
    ]);
  });

  it('TRUSTED_PROXIES takes addresses and CIDR ranges; anything else is one error quoting the bad entries', () => {
    expect(configFor({ TRUSTED_PROXIES: '10.0.0.5, 10.1.0.0/16,fd00::/8' }).listen.trustedProxies).toEqual(['10.0.0.5', '10.1.0.0/16', 'fd00::/8']);
    expect(configFor({}).listen.trustedProxies).toEqual([]);
    expect(errorsFor({ TRUSTED_PROXIES: '10.0.0.5, lb.example.com, 10.0.0.0/40' })).toEqual([
      "TRUSTED_PROXIES: 'lb.example.com', '10.0.0.0/40': not an IP address or a CIDR range such as 10.0.0.0/8 (comma-separated)",
    ]);
  });

  it('one TLS file without the other is an error', () => {
    expect(errorsFor({ TLS_CERT_FILE: writeTemp('cert') })).toEqual([expect.stringMatching(/^TLS_KEY_FILE: set TLS_CERT_FILE and TLS_KEY_FILE together/)]);
  });

  it('a wildcard bind address needs an advertised address', () => {
    expect(errorsFor({ RTP_BIND_ADDRESS: '0.0.0.0' })).toEqual([expect.stringMatching(/^RTP_ADVERTISED_ADDRESS: required while RTP_BIND_ADDRESS is 0.0.0.0/)]);
    expect(configFor({ SIP_BIND_ADDRESS: '0.0.0.0', SIP_ADVERTISED_ADDRESS: '203.0.113.7' }).sip.advertisedAddress).toBe('203.0.113.7');
  });

  it('all errors are reported together, not just the first', () => {
    const errors = errorsFor({ LISTEN_PORT: 'x', SIP_PORT: 'y', LOG_LEVEL: 'z' });
    expect(errors.map((e) => e.split(':')[0])).toEqual(['LISTEN_PORT', 'SIP_PORT', 'LOG_LEVEL']);
  });
});

describe('the example secret', () => {
  it('is refused on a non-loopback LISTEN_HOST, naming LISTEN_HOST and BOTS', () => {
    const errors = errorsFor({ LISTEN_HOST: '0.0.0.0' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^LISTEN_HOST: 0\.0\.0\.0 .*BOTS still holds the example client secret/);
    expect(errors[0]).not.toContain(EXAMPLE_CLIENT_SECRET);
  });

  it.each(['127.0.0.1', '127.1.2.3', '::1'])('is allowed on loopback %s', (host) => {
    expect(configFor({ LISTEN_HOST: host }).usesExampleSecret).toBe(true);
  });

  it('is detected even beside a real bot', () => {
    const bots = JSON.stringify([{ botId: 'st-1', clientId: 'cs-1', clientSecret: 'real' }, { botId: 'st-2', clientId: 'cs-2', clientSecret: EXAMPLE_CLIENT_SECRET }]);
    expect(errorsFor({ BOTS: bots, LISTEN_HOST: '192.0.2.1' })[0]).toMatch(/^LISTEN_HOST:/);
  });
});

describe('JSON settings', () => {
  it.each([
    ['not JSON', '[{'],
    ['an object', '{"botId":"st-1"}'],
    ['an empty array', '[]'],
  ])('BOTS as %s is an error that never echoes the text', (_, value) => {
    const errors = errorsFor({ BOTS: value.replace('st-1', 'hunter2') });
    expect(errors).toEqual([expect.stringMatching(/^BOTS: must be a non-empty JSON array such as/)]);
    expect(errors[0]).not.toContain('hunter2');
  });

  it('BOTS entries need all three non-empty strings and unique botIds', () => {
    const errors = errorsFor({
      BOTS: JSON.stringify([
        { botId: 'st-1', clientId: 'cs-1', clientSecret: 'hunter2' },
        { botId: 'st-1', clientId: 'cs-2', clientSecret: 'other' },
        { botId: 'st-3', clientId: '', clientSecret: 7 },
        'st-4',
      ]),
    });
    expect(errors).toEqual([
      'BOTS[1]: botId "st-1" is listed twice; each bot once',
      'BOTS[2]: clientId, clientSecret must be non-empty strings',
      'BOTS[3]: must be an object with botId, clientId and clientSecret',
    ]);
    expect(errors.join()).not.toMatch(/hunter2|other/);
  });

  it('BOTS may list several secrets for a bot while one is rotated, current first, read from BOTS_FILE like one', () => {
    const bots = writeTemp(JSON.stringify([{ botId: 'st-1', clientId: 'cs-1', clientSecret: ['new-secret', 'old-secret'] }, { botId: 'st-2', clientId: 'cs-2', clientSecret: 'only' }]));
    expect(configFor({ BOTS_FILE: bots }).bots).toEqual([
      { botId: 'st-1', clientId: 'cs-1', clientSecrets: ['new-secret', 'old-secret'] },
      { botId: 'st-2', clientId: 'cs-2', clientSecrets: ['only'] },
    ]);
  });

  it(`BOTS: a bot's secrets are 1 to ${MAX_SECRETS_PER_BOT} distinct non-empty strings, each fault named by position, never by value`, () => {
    const bot = (clientSecret: unknown) => ({ botId: 'st-1', clientId: 'cs-1', clientSecret });
    const errors = errorsFor({
      BOTS: JSON.stringify([
        bot([]),
        { ...bot(['hunter2', 'hunter3', 'hunter4', 'hunter5']), botId: 'st-2' },
        { ...bot(['hunter2', 7, 'hunter2']), botId: 'st-3' },
      ]),
    });
    const rule = `must be a string, or while rotating an array of up to ${MAX_SECRETS_PER_BOT}, current first: ["new…","old…"]`;
    expect(errors).toEqual([
      `BOTS[0].clientSecret: 0 secrets; ${rule}`,
      `BOTS[1].clientSecret: 4 secrets; ${rule}`,
      'BOTS[2].clientSecret[1]: must be a non-empty string',
      'BOTS[2].clientSecret[2]: the same secret as BOTS[2].clientSecret[0]; list each once',
    ]);
    expect(errors.join()).not.toContain('hunter');
  });

  it('the example secret is noticed among a rotating bot\'s secrets too', () => {
    const bots = JSON.stringify([{ botId: 'st-1', clientId: 'cs-1', clientSecret: ['real', EXAMPLE_CLIENT_SECRET] }]);
    expect(errorsFor({ BOTS: bots, LISTEN_HOST: '192.0.2.1' })[0]).toMatch(/^LISTEN_HOST: .*example client secret/);
  });

  it('SIP_HEADERS checks names as SIP tokens and values against the Talkdesk fields', () => {
    const errors = errorsFor({ SIP_HEADERS: JSON.stringify({ 'X Bad': 'callSid', 'X-Ok': 'sipuri', 'X-Field': 'caller', Contact: 'botId', 'x-ok': 'botId' }) });
    expect(errors).toEqual([
      'SIP_HEADERS: "X Bad" is not a valid SIP header name (letters, digits and -.!%*_+`\'~ only)',
      'SIP_HEADERS: X-Field must map to one of callSid, streamSid, interactionId, accountSid, botId, accountId, sipuri (got "caller")',
      'SIP_HEADERS: Contact is written by the SIP stack itself; use a custom header such as X-Contact',
      'SIP_HEADERS: x-ok is listed twice (header names are case-insensitive)',
    ]);
    expect(errorsFor({ SIP_HEADERS: '[]' })[0]).toMatch(/^SIP_HEADERS: must be a JSON object/);
    expect(errorsFor({ SIP_HEADERS: '{' })[0]).toMatch(/^SIP_HEADERS: not valid JSON/);
    expect(configFor({ SIP_HEADERS: '{}' }).sip.headers).toEqual({});
  });

  it('ESCALATION_RULES checks each rule and names the element at fault', () => {
    const errors = errorsFor({
      ESCALATION_RULES: JSON.stringify([
        { header: 'X-Escalate', match: '(?i)^true$' },
        { header: 'X-Data', decode: 'base64', field: 'a..b' },
        { match: 'x' },
        { header: 'X-Ok', ringgroup: 'sales' },
        { header: 'X-Ok', ringGroup: '' },
      ]),
    });
    expect(errors).toEqual([
      expect.stringMatching(/^ESCALATION_RULES\[0\]\.match: not a valid JavaScript regular expression .*matching is already case-insensitive$/),
      'ESCALATION_RULES[1].decode: must be "text" or "uui" (got "base64")',
      'ESCALATION_RULES[1].field: must be a dot path such as queue or routing.ringGroup (got "a..b")',
      'ESCALATION_RULES[2].header: must be a SIP header name such as X-Escalate (got undefined)',
      'ESCALATION_RULES[3]: unknown key "ringgroup"; allowed keys are name, header, decode, match, field, ringGroup',
      'ESCALATION_RULES[4].ringGroup: must be a non-empty string',
    ]);
    expect(errorsFor({ ESCALATION_RULES: '{}' })[0]).toMatch(/^ESCALATION_RULES: must be a JSON array of rules/);
  });

  it('ESCALATION_RULES may be empty: never escalate', () => {
    expect(configFor({ ESCALATION_RULES: '[]' }).escalation.rules).toEqual([]);
  });

  it('a valid rule keeps exactly its fields', () => {
    const rule = { name: 'r', header: 'X-Route', decode: 'uui', match: '^q=(\\w+)', field: 'routing.group', ringGroup: 'fallback' };
    expect(configFor({ ESCALATION_RULES: JSON.stringify([rule]) }).escalation.rules).toEqual([rule]);
  });
});

describe('maskObscure', () => {
  it('hides the value and default of obscure entries, including in service paths, and leaves the rest', () => {
    const app = shipped();
    app['/ccai'] = { TOKEN: { type: 'string', description: 'd', obscure: true, default: 'abc' } };
    const masked = maskObscure(app);
    expect(masked['BOTS']).toMatchObject({ value: '********', obscure: true });
    expect(JSON.stringify(masked)).not.toContain(EXAMPLE_CLIENT_SECRET);
    expect((masked['/ccai'] as Record<string, unknown>)['TOKEN']).toMatchObject({ default: '********' });
    expect(masked['LISTEN_HOST']).toEqual(app['LISTEN_HOST']);
    expect(app['BOTS']!['value']).toContain(EXAMPLE_CLIENT_SECRET);
  });
});
