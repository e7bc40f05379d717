import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../config/load.js';
import type { PluginConfig } from '../../../../config/schema.js';
import { parseSipUri } from '../../../../plugin/sip/embedded/uri.js';
import { requestUri } from '../../../../plugin/sip/invite-target.js';

function shippedSip(env: Record<string, string> = {}): PluginConfig['sip'] {
  const loaded = loadConfig({ file: join(import.meta.dirname, '../../../../jambonz-app.json'), env });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config.sip;
}

const sip = shippedSip({ CCAI_SIP_HOST: 'ccai.example.com', CCAI_SIP_PORT: '5070' });

describe('requestUri: the sipuri from the Talkdesk URL (or a jambonz "to") as the request-URI user', () => {
  it.each(['+17345551234', '17345551234', 'kore_bot-1.test', "alice.o'neil(x)!~*"])('keeps %s as it is', (user) => {
    expect(requestUri(user, sip)).toBe(`sip:${user}@ccai.example.com:5070;transport=udp`);
  });

  it.each([
    ['a maddr parameter', '+1734;maddr=203.0.113.9', 'sip:+1734%3Bmaddr%3D203.0.113.9@ccai.example.com:5070;transport=udp'],
    ['a header part', '1?Route=%3Csip:evil%3E', 'sip:1%3FRoute%3D%253Csip%3Aevil%253E@ccai.example.com:5070;transport=udp'],
    ['& $ , /', 'a&b$c,d/e', 'sip:a%26b%24c%2Cd%2Fe@ccai.example.com:5070;transport=udp'],
  ])('percent-escapes %s: nothing outside RFC 3261 unreserved (and +) reaches the URI unescaped', (_, user, expected) => {
    expect(requestUri(user, sip)).toBe(expected);
  });

  it('a sipuri carrying ;maddr= adds no parameter to the URI and moves no host', () => {
    const uri = parseSipUri(requestUri('+1734;maddr=203.0.113.9;transport=tcp', sip));
    expect(uri).toMatchObject({ host: 'ccai.example.com', port: 5070, user: '+1734%3Bmaddr%3D203.0.113.9%3Btransport%3Dtcp' });
    expect(uri?.params).toEqual({ transport: 'udp' });
  });
});

describe('requestUri without CCAI_SIP_PORT: no port, so the host is found by NAPTR/SRV (RFC 3263 §4.2)', () => {
  it.each([
    ['udp', 'sip', {}, 'sip:+17345551234@ccai.example.com;transport=udp'],
    ['tls', 'sips', { CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_SCHEME: 'sips' }, 'sips:+17345551234@ccai.example.com;transport=tls'],
  ])('%s (%s): %s', (_transport, _scheme, env, expected) => {
    const portless = shippedSip({ CCAI_SIP_HOST: 'ccai.example.com', CCAI_SIP_PORT: '', ...env });
    expect(portless.ccaiPort).toBeUndefined();
    expect(requestUri('+17345551234', portless)).toBe(expected);
    expect(parseSipUri(requestUri('+17345551234', portless))).not.toHaveProperty('port');
  });
});
