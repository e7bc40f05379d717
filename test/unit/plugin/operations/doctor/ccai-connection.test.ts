import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ccaiConnectionChecks } from '../../../../../plugin/operations/doctor/ccai-connection.js';
import { makeTestPki, type TestPki } from '../../../../support/pki.js';
import { configWith, OWN_BOTS, silentLog } from './fixture.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function tlsServer(opts: TlsOptions = {}): Promise<number> {
  const server = createTlsServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key), ...opts }, (socket) => socket.on('error', () => undefined));
  server.on('tlsClientError', () => undefined);
  return listening(server);
}

function run(env: Record<string, string>) {
  return ccaiConnectionChecks(configWith({ BOTS: OWN_BOTS, ...env }).config, silentLog, 1000);
}

describe('doctor CCAI connection checks', () => {
  it('a host name that does not resolve: ✗ naming CCAI_SIP_HOST, and nothing more', async () => {
    const result = await run({ CCAI_SIP_HOST: 'ccai.invalid' });
    expect(result).toMatchObject({ usable: false, checks: [{ status: 'fail', title: 'CCAI host', detail: expect.stringMatching(/^ccai\.invalid does not resolve: /), fix: expect.stringContaining('CCAI_SIP_HOST') }] });
    expect(result.checks).toHaveLength(1);
  });

  it('a name that resolves: ✓ with its address, found as the INVITE finds it', async () => {
    const withPort = await run({ CCAI_SIP_HOST: 'localhost', CCAI_SIP_PORT: '5070' });
    expect(withPort.checks[0]).toEqual({ status: 'ok', title: 'CCAI host', detail: 'localhost:5070 resolves to 127.0.0.1:5070' });
    expect(withPort.target).toEqual({ host: '127.0.0.1', port: 5070, name: 'localhost' });
    // no port: RFC 3263; localhost publishes no SRV, so its address on the default port
    const byDns = await run({ CCAI_SIP_HOST: 'localhost' });
    expect(byDns.checks[0]).toEqual({ status: 'ok', title: 'CCAI host', detail: 'localhost resolves by DNS (RFC 3263: NAPTR, SRV, A) to 127.0.0.1:5060' });
  });

  it('TCP: ✓ when it connects, ✗ in connection-failure words when refused', async () => {
    const port = await listening(createTcpServer((socket) => socket.destroy()));
    expect((await run({ CCAI_SIP_TRANSPORT: 'tcp', CCAI_SIP_PORT: String(port) })).checks[1]).toEqual({ status: 'ok', title: 'SIP transport', detail: `TCP to 127.0.0.1:${port} connects` });
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    const refused = await run({ CCAI_SIP_TRANSPORT: 'tcp', CCAI_SIP_PORT: String(port) });
    expect(refused).toMatchObject({ usable: false, checks: [{}, { status: 'fail', detail: `TCP connection to 127.0.0.1:${port} failed: ECONNREFUSED; check CCAI_SIP_HOST, CCAI_SIP_PORT and CCAI_SIP_TRANSPORT` }] });
  });

  it('TLS to a trusted certificate: ✓ connects, the certificate verifies with its issuer and days left (⚠: the test CA\'s are 2 days)', async () => {
    const port = await tlsServer();
    const { checks, usable } = await run({ CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(port), CCAI_TLS_CA_FILE: pki.caFile, CCAI_SIP_HOST: 'localhost', CCAI_TLS_SERVERNAME: 'ccai.test' });
    expect(usable).toBe(true);
    expect(checks[1]).toMatchObject({ status: 'ok', title: 'SIP transport', detail: expect.stringMatching(/^TLS to 127\.0\.0\.1:\d+ connects \(TLSv1\.3\)$/) });
    expect(checks[2]).toMatchObject({
      status: 'warn',
      title: 'CCAI certificate',
      detail: expect.stringMatching(/^verifies for ccai\.test \(IP Address:127\.0\.0\.1, DNS:ccai\.test\), issued by Test SIP CA, [01] days left/),
      fix: 'ask the CCAI side to renew it: calls fail the day it expires',
    });
    expect(checks).toHaveLength(3);
  });

  it('TLS to a certificate for another name: ✗ naming CCAI_TLS_SERVERNAME', async () => {
    const port = await tlsServer();
    const { checks } = await run({ CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(port), CCAI_TLS_CA_FILE: pki.caFile, CCAI_TLS_SERVERNAME: 'other.test' });
    expect(checks[1]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/is not valid for the name "other\.test" \(ERR_TLS_CERT_ALTNAME_INVALID.*set CCAI_TLS_SERVERNAME/) });
  });

  it('CCAI_TLS_VERIFY=false to a self-signed certificate: ⚠ not verified, saying why it would fail', async () => {
    const port = await tlsServer({ cert: readFileSync(pki.selfSigned.cert), key: readFileSync(pki.selfSigned.key) });
    const { checks } = await run({ CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(port), CCAI_TLS_VERIFY: 'false' });
    expect(checks[2]).toMatchObject({ status: 'warn', title: 'CCAI certificate', detail: expect.stringMatching(/^not verified \(CCAI_TLS_VERIFY=false\), and it would fail: .*DEPTH_ZERO_SELF_SIGNED_CERT/) });
  });

  describe('mTLS: a CCAI server that requires a client certificate from its CA', () => {
    const requireClientCert = () => tlsServer({ requestCert: true, rejectUnauthorized: true, ca: readFileSync(pki.caFile) });
    const env = (port: number) => ({ CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(port), CCAI_TLS_CA_FILE: pki.caFile });

    it('ours is signed by that CA: ✓ mTLS', async () => {
      const port = await requireClientCert();
      const { checks, usable } = await run({ ...env(port), SIP_TLS_CERT_FILE: pki.client.cert, SIP_TLS_KEY_FILE: pki.client.key });
      expect(checks[3]).toEqual({ status: 'ok', title: 'mTLS', detail: `the CCAI server kept the connection after our client certificate (SIP_TLS_CERT_FILE=${pki.client.cert})` });
      expect(usable).toBe(true);
    });

    it('none configured: ✗ saying to set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE', async () => {
      const port = await requireClientCert();
      const { checks, usable } = await run(env(port));
      expect(checks[3]).toMatchObject({ status: 'fail', title: 'mTLS', detail: expect.stringMatching(/the CCAI server requires a client certificate \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\); set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE$/) });
      expect(usable).toBe(false);
    });

    it('ours is signed by another CA: ✗ saying the server refused it', async () => {
      const port = await requireClientCert();
      const { checks } = await run({ ...env(port), SIP_TLS_CERT_FILE: pki.foreign.cert, SIP_TLS_KEY_FILE: pki.foreign.key });
      expect(checks[3]).toMatchObject({ status: 'fail', title: 'mTLS', detail: expect.stringMatching(/the CCAI server refused our client certificate \(.*\); check that SIP_TLS_CERT_FILE is signed by a CA the CCAI server trusts$/) });
    });
  });
});
