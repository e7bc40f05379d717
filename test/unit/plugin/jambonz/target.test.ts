import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../config/load.js';
import type { PluginConfig } from '../../../../config/schema.js';
import { resolveCcaiTarget, type JambonzCall } from '../../../../plugin/jambonz/target.js';

function shippedSip(env: Record<string, string> = {}): PluginConfig['sip'] {
  const loaded = loadConfig({ file: join(import.meta.dirname, '../../../../jambonz-app.json'), env });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config.sip;
}

const CALL: JambonzCall = { to: '+15550002222', callSid: 'cs-1', accountSid: 'ac-1', applicationSid: 'ap-1' };
const SOURCE = 'env_vars of jambonz application ap-1';
const IDS = { 'X-Jambonz-Call-Sid': 'cs-1', 'X-Jambonz-Account-Sid': 'ac-1', 'X-Jambonz-Application-Sid': 'ap-1' };

describe('resolveCcaiTarget: a jambonz call to the CCAI bot', () => {
  it('with no env_vars (or none that apply) dials the instance target with the jambonz ids', () => {
    for (const envVars of [undefined, null, [], {}, { BOTS: 'x', LISTEN_PORT: 1 }, { CCAI_SIP_HOST: '', CCAI_SIP_PORT: null }]) {
      expect(resolveCcaiTarget(shippedSip(), envVars, CALL, SOURCE)).toEqual({
        target: { sipUri: 'sip:+15550002222@127.0.0.1;transport=udp', headers: IDS },
        applied: [],
        rejected: [],
      });
    }
  });

  it('applies valid env values over the instance, numbers as the portal sends them or as digit strings', () => {
    const sip = shippedSip();
    const before = structuredClone(sip);
    const r = resolveCcaiTarget(
      sip,
      { CCAI_SIP_HOST: 'ccai.example.com', CCAI_SIP_PORT: '5061', CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_SCHEME: 'sips' },
      CALL,
      SOURCE,
    );
    expect(r.target?.sipUri).toBe('sips:+15550002222@ccai.example.com:5061;transport=tls');
    expect(r.applied).toEqual(['CCAI_SIP_HOST', 'CCAI_SIP_PORT', 'CCAI_SIP_TRANSPORT', 'CCAI_SIP_SCHEME']);
    expect(r.rejected).toEqual([]);
    expect(resolveCcaiTarget(sip, { CCAI_SIP_PORT: 5080 }, CALL, SOURCE).target?.sipUri).toBe('sip:+15550002222@127.0.0.1:5080;transport=udp');
    expect(sip).toEqual(before);
  });

  it('ignores each bad value with the loader rule, naming setting and source, and keeps the instance value', () => {
    const r = resolveCcaiTarget(
      shippedSip(),
      { CCAI_SIP_HOST: 5, CCAI_SIP_PORT: 0, CCAI_SIP_TRANSPORT: 'UDP', CCAI_SIP_SCHEME: 'sipx', SIP_HEADERS: '{not json' },
      CALL,
      SOURCE,
    );
    expect(r.target?.sipUri).toBe('sip:+15550002222@127.0.0.1;transport=udp');
    expect(r.applied).toEqual([]);
    expect(r.rejected).toEqual([
      `CCAI_SIP_HOST: must be a string (got "5" from "value" in ${SOURCE})`,
      `CCAI_SIP_PORT: must be an integer between 1 and 65535 (got "0" from "value" in ${SOURCE})`,
      `CCAI_SIP_TRANSPORT: must be one of udp, tcp, tls (got "UDP" from "value" in ${SOURCE})`,
      `CCAI_SIP_SCHEME: must be one of sip, sips (got "sipx" from "value" in ${SOURCE})`,
      expect.stringMatching(new RegExp(`^SIP_HEADERS: not valid JSON .*\\(in ${SOURCE}\\)$`)),
    ]);
  });

  it('keeps sips with tls only: an env scheme the transport cannot carry is dropped, then an env transport', () => {
    const udp = resolveCcaiTarget(shippedSip(), { CCAI_SIP_SCHEME: 'sips' }, CALL, SOURCE);
    expect(udp.target?.sipUri).toBe('sip:+15550002222@127.0.0.1;transport=udp');
    expect(udp.rejected).toEqual([expect.stringMatching(/^CCAI_SIP_SCHEME: sips requires CCAI_SIP_TRANSPORT=tls/)]);
    expect(udp.applied).toEqual([]);

    const tlsInstance = shippedSip({ CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_SCHEME: 'sips', CCAI_SIP_PORT: '5061' });
    const tcp = resolveCcaiTarget(tlsInstance, { CCAI_SIP_TRANSPORT: 'tcp' }, CALL, SOURCE);
    expect(tcp.target?.sipUri).toBe('sips:+15550002222@127.0.0.1:5061;transport=tls');
    expect(tcp.rejected).toEqual([expect.stringMatching(/^CCAI_SIP_TRANSPORT: sips requires CCAI_SIP_TRANSPORT=tls/)]);
    // both from env: the scheme goes, the transport stays
    const both = resolveCcaiTarget(tlsInstance, { CCAI_SIP_TRANSPORT: 'tcp', CCAI_SIP_SCHEME: 'sips' }, CALL, SOURCE);
    expect(both.target?.sipUri).toBe('sips:+15550002222@127.0.0.1:5061;transport=tls');
    expect(both.applied).toEqual([]);
    const plain = resolveCcaiTarget(tlsInstance, { CCAI_SIP_TRANSPORT: 'tcp', CCAI_SIP_SCHEME: 'sip' }, CALL, SOURCE);
    expect(plain.target?.sipUri).toBe('sip:+15550002222@127.0.0.1:5061;transport=tcp');
  });

  it('SIP_HEADERS: only the sipuri mapping has a value on a jambonz call; the jambonz id headers cannot be replaced', () => {
    const mapping = '{"X-Kore-Number":"sipuri","x-jambonz-call-sid":"sipuri","X-Talkdesk-Call-Sid":"callSid"}';
    const r = resolveCcaiTarget(shippedSip(), { SIP_HEADERS: mapping }, CALL, SOURCE);
    expect(r.target?.headers).toEqual({ ...IDS, 'X-Kore-Number': '+15550002222' });
    expect(r.applied).toEqual(['SIP_HEADERS']);
    const instance = shippedSip({ SIP_HEADERS: '{"X-Number":"sipuri"}' });
    expect(resolveCcaiTarget(instance, { SIP_HEADERS: '{"From":"sipuri"}' }, CALL, SOURCE).target?.headers).toEqual({
      ...IDS,
      'X-Number': '+15550002222',
    });
  });

  it('strips control characters from the ids and leaves out absent ones', () => {
    const r = resolveCcaiTarget(shippedSip(), {}, { to: '100', callSid: 'a\r\nVia: evil', accountSid: 7, applicationSid: undefined }, SOURCE);
    expect(r.target?.headers).toEqual({ 'X-Jambonz-Call-Sid': 'aVia: evil' });
  });

  it('has no target when the call\'s "to" is no SIP user part', () => {
    for (const to of [undefined, '', 'sip:x@evil', '1 2', 42]) {
      const r = resolveCcaiTarget(shippedSip(), { CCAI_SIP_HOST: 'nope!' }, { ...CALL, to }, SOURCE);
      expect(r.target).toBeUndefined();
      expect(r.problem).toMatch(/is not a SIP user part/);
      expect(r.rejected).toHaveLength(1);
    }
  });
});
