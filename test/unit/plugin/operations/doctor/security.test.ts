import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addressScope, isPublicListener } from '../../../../../plugin/operations/doctor/address-scope.js';
import { addressChecks } from '../../../../../plugin/operations/doctor/addresses.js';
import { securityChecks } from '../../../../../plugin/operations/doctor/security.js';
import { configWith, OWN_BOTS } from './fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'doctor-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('doctor security checks', () => {
  it('own secrets on loopback: ✓ BOTS and listener', () => {
    const { config, warnings } = configWith({ BOTS: OWN_BOTS });
    expect(securityChecks(config, warnings)).toEqual([
      { status: 'ok', title: 'BOTS', detail: '1 bot, each with one client secret of its own' },
      { status: 'ok', title: 'listener', detail: 'LISTEN_HOST 127.0.0.1 is not reachable from outside' },
    ]);
  });

  it('the shipped example secret: ⚠ with the fix', () => {
    const { config, warnings } = configWith();
    expect(securityChecks(config, warnings)[0]).toMatchObject({ status: 'warn', title: 'BOTS', fix: expect.stringContaining('BOTS_FILE') });
  });

  it('a BOTS_FILE other users can read: ⚠ naming the file and chmod 600; none once it is 0600', () => {
    const file = join(dir, 'bots.json');
    writeFileSync(file, OWN_BOTS);
    chmodSync(file, 0o644);
    const open = configWith({ BOTS_FILE: file });
    expect(securityChecks(open.config, open.warnings)).toContainEqual({
      status: 'warn',
      title: 'secret file',
      detail: `BOTS_FILE=${file} is open to other users of this host (mode 0644): whoever can read it has the secret; chmod 600 it`,
    });
    chmodSync(file, 0o600);
    const closed = configWith({ BOTS_FILE: file });
    expect(securityChecks(closed.config, closed.warnings).filter((c) => c.title === 'secret file')).toEqual([]);
  });

  it('a bot with two secrets: ⚠ rotation under way, naming the bot', () => {
    const bots = JSON.stringify([{ botId: 'st-rot', clientId: 'cs-rot', clientSecret: ['new', 'old'] }]);
    const { config, warnings } = configWith({ BOTS: bots });
    expect(securityChecks(config, warnings)[0]).toEqual({
      status: 'warn',
      title: 'secret rotation',
      detail: 'bot st-rot lists 2 client secrets: a rotation is under way, and tokens signed with any of them are accepted',
      fix: "once Kore signs with the new secret (the first), remove the others from st-rot's clientSecret in BOTS",
    });
  });

  it.each([
    ['0.0.0.0', [], 'warn'],
    ['203.0.113.7', [], 'warn'],
    ['0.0.0.0', ['10.0.0.0/8'], 'ok'],
    ['10.1.2.3', [], 'ok'],
  ] as const)('LISTEN_HOST=%s TRUSTED_PROXIES=%j: %s', (host, proxies, status) => {
    const { config } = configWith({ BOTS: OWN_BOTS, LISTEN_HOST: host, TRUSTED_PROXIES: proxies.join(',') });
    const check = securityChecks(config, []).find((c) => c.title === 'TRUSTED_PROXIES' || c.title === 'listener');
    expect(check?.status).toBe(status);
    if (status === 'warn') expect(check?.fix).toMatch(/^list the load balancer addresses .* in TRUSTED_PROXIES/);
  });
});

describe('doctor address checks', () => {
  it('scopes: loopback, private (RFC 1918, CGNAT, link-local, ULA), public; wildcards are public listeners', () => {
    expect(['127.0.0.1', '::1'].map(addressScope)).toEqual(['loopback', 'loopback']);
    expect(['10.0.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.1.1', 'fd00::1'].map(addressScope)).toEqual(Array(6).fill('private'));
    expect(['172.32.0.1', '8.8.8.8', '2001:db8::1'].map(addressScope)).toEqual(['public', 'public', 'public']);
    expect([isPublicListener('0.0.0.0'), isPublicListener('::'), isPublicListener('192.168.1.1')]).toEqual([true, true, false]);
  });

  it('a private advertised address while CCAI is public: ⚠ NAT, naming the setting', () => {
    const { config } = configWith({ BOTS: OWN_BOTS, SIP_BIND_ADDRESS: '0.0.0.0', SIP_ADVERTISED_ADDRESS: '10.0.0.5', RTP_ADVERTISED_ADDRESS: '198.51.100.4' });
    const [sip, rtp] = addressChecks(config, '203.0.113.10');
    expect(sip).toEqual({
      status: 'warn',
      title: 'advertised SIP address',
      detail: "10.0.0.5 is private while CCAI (203.0.113.10) is public: CCAI's responses and its BYE arrive only through a NAT that maps it (NAT)",
      fix: 'set SIP_ADVERTISED_ADDRESS to the address CCAI reaches this host at (the public address of its NAT, when there is one)',
    });
    expect(rtp).toMatchObject({ status: 'ok', detail: '198.51.100.4 (public), CCAI 203.0.113.10 (public)' });
  });

  it('a loopback address advertised to a CCAI elsewhere: ✗; to a CCAI on loopback (a test): ✓', () => {
    const { config } = configWith({ BOTS: OWN_BOTS });
    expect(addressChecks(config, '10.9.9.9').map((c) => c.status)).toEqual(['fail', 'fail']);
    expect(addressChecks(config, '127.0.0.1').map((c) => c.status)).toEqual(['ok', 'ok']);
  });
});
