import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PluginConfig } from '../../../../../config/schema.js';
import { wssCertificateChecks } from '../../../../../plugin/operations/doctor/wss-certificate.js';
import { makeTestPki, type TestPki } from '../../../../support/pki.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());

const DAY_MS = 86_400_000;

function listen(cert: string, key: string, publicHost?: string): PluginConfig['listen'] {
  return { host: '127.0.0.1', port: 0, trustedProxies: [], tlsCertFile: cert, tlsKeyFile: key, ...(publicHost ? { publicHost } : {}) };
}

describe('doctor wss certificate checks', () => {
  it('unset: ✓ plain ws://', () => {
    expect(wssCertificateChecks({ host: '127.0.0.1', port: 0, trustedProxies: [] })).toEqual([
      { status: 'ok', title: 'wss certificate', detail: 'none (TLS_CERT_FILE unset): the gateway serves plain ws://, so TLS must end in front of it' },
    ]);
  });

  it('a valid pair for PUBLIC_HOST with time left: ✓ with its names and days; under 14 days: ⚠', () => {
    const config = listen(pki.server.cert, pki.server.key, 'ccai.test:8443');
    expect(wssCertificateChecks(config, Date.now() - 30 * DAY_MS)).toEqual([
      { status: 'ok', title: 'wss certificate', detail: expect.stringMatching(/^.*server\.pem \(IP Address:127\.0\.0\.1, DNS:ccai\.test\), its key matches, 3[01] days left$/) },
    ]);
    expect(wssCertificateChecks(config)).toEqual([
      { status: 'warn', title: 'wss certificate', detail: expect.stringMatching(/expires in [01] days/), fix: 'renew it now: check that certbot or cert-manager renewals run' },
    ]);
  });

  it('expired: ✗', () => {
    expect(wssCertificateChecks(listen(pki.expired.cert, pki.expired.key))).toMatchObject([{ status: 'fail', detail: expect.stringMatching(/expired on .*: Talkdesk refuses it$/) }]);
  });

  it('a key that is not the certificate\'s: ✗ naming both settings', () => {
    expect(wssCertificateChecks(listen(pki.server.cert, pki.client.key))).toEqual([
      {
        status: 'fail',
        title: 'wss certificate',
        detail: `TLS_KEY_FILE=${pki.client.key} is not the key of TLS_CERT_FILE=${pki.server.cert}`,
        fix: 'set TLS_CERT_FILE and TLS_KEY_FILE to one certificate and its own key',
      },
    ]);
  });

  it('not a certificate: ✗; not valid for PUBLIC_HOST: ⚠', () => {
    const junk = join(pki.dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    expect(wssCertificateChecks(listen(junk, pki.server.key))).toMatchObject([{ status: 'fail', fix: 'point TLS_CERT_FILE at the certificate (and its chain) in PEM' }]);
    const checks = wssCertificateChecks(listen(pki.server.cert, pki.server.key, 'gw.example.com'), Date.now() - 30 * DAY_MS);
    expect(checks[1]).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^not valid for PUBLIC_HOST gw\.example\.com/) });
  });
});
