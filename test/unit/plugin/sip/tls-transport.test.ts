import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SipTlsConfig } from '../../../../config/schema.js';
import type { InviteRequest } from '../../../../plugin/sip/backend.js';
import { SipFailure } from '../../../../plugin/sip/errors.js';
import type { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import { loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP } from './fake-uas.js';
import { StreamPeer } from './stream-peer.js';
import { CERT_NAME, makeTestPki, type KeyPair, type TestPki } from '../../../support/pki.js';

// SIP over TLS against a Node TLS peer with certificates made by openssl: every verification failure must end the
// INVITE with a transport SipFailure that says why, in words an operator can act on, and names the setting.
let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki.remove());

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  backend: EmbeddedSipBackend;
  peer: StreamPeer;
  request: InviteRequest;
  lines: Array<Record<string, unknown>>;
  /** SNI names the peer saw, false for none */
  sni: Array<string | false>;
}

async function setup(peerCert: KeyPair, tls: Partial<SipTlsConfig>, peerOptions: TlsOptions = {}): Promise<Setup> {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const sni: Array<string | false> = [];
  const peer = await StreamPeer.start((onSocket) => {
    const server = createTlsServer({ cert: readFileSync(peerCert.cert), key: readFileSync(peerCert.key), ...peerOptions }, onSocket);
    server.on('secureConnection', (socket: TLSSocket) => sni.push((socket as TLSSocket & { servername: string | false }).servername));
    server.on('tlsClientError', () => undefined);
    return server;
  });
  const backend = loopbackBackend({
    transport: 'tls',
    tls: { port: 0, verify: true, caFile: pki.caFile, ...tls },
    ccaiHost: '127.0.0.1',
    log,
    idleConnectionMs: 100,
    timers: { T1: 10 },
  });
  await backend.start();
  cleanups.push(
    () => backend.stop(),
    () => peer.close(),
  );
  const request: InviteRequest = {
    requestUri: `sips:+17345551234@127.0.0.1:${peer.port};transport=tls`,
    fromUser: 'talkdesk',
    headers: {},
    sdp: sdpOffer(20000),
    log,
    delegate: { onBye: vi.fn(), onRemoteSdp: vi.fn(), onRefer: vi.fn() },
  };
  return { backend, peer, request, lines, sni };
}

async function failureOf(s: Setup): Promise<SipFailure> {
  const err = await s.backend.invite(s.request).answered.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SipFailure);
  expect((err as SipFailure).kind).toBe('transport');
  await vi.waitFor(() => expect(s.backend.activeCounts.transactions).toBe(0));
  return err as SipFailure;
}

const messages = (s: Setup) => s.lines.map((l) => l.msg);

describe('EmbeddedSipBackend over TLS', () => {
  it('verifies the CCAI certificate by IP (no SNI for an IP), sends sips/TLS Via and Contact, hears the answer', async () => {
    const s = await setup(pki.server, {});
    const outgoing = s.backend.invite(s.request);
    const invite = await s.peer.next('INVITE');
    expect(invite.raw.split('\r\n')[0]).toBe(`INVITE sips:+17345551234@127.0.0.1:${s.peer.port};transport=tls SIP/2.0`);
    expect(invite.message.sip.get('via')).toMatch(/^SIP\/2\.0\/TLS 127\.0\.0\.1:5061;branch=z9hG4bK/);
    expect(invite.message.sip.get('contact')).toBe('<sips:talkdesk@127.0.0.1:5061;transport=tls>');
    expect(s.sni).toEqual([false]);
    s.peer.reply(invite, 486, 'Busy Here');
    await expect(outgoing.answered).rejects.toMatchObject({ kind: 'rejected', status: 486 });
    expect(messages(s)).toContain(
      'no SIP_TLS_CERT_FILE/SIP_TLS_KEY_FILE: no SIP TLS listener, so the bot must send its in-dialog requests (its BYE) over the connection we opened',
    );
  });

  it('checks CCAI_TLS_SERVERNAME in the certificate and sends it as SNI', async () => {
    const s = await setup(pki.server, { serverName: CERT_NAME });
    s.backend.invite(s.request);
    await s.peer.next('INVITE');
    expect(s.sni).toEqual([CERT_NAME]);
  });

  it.each([
    ['a certificate for another name', () => pki.server, { serverName: 'wrong.test' }, /not valid for the name "wrong\.test" \(ERR_TLS_CERT_ALTNAME_INVALID.*set CCAI_TLS_SERVERNAME/],
    ['a CA we were not given (system CAs only)', () => pki.server, { caFile: undefined }, /signed by a CA we do not trust \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); set CCAI_TLS_CA_FILE/],
    ['a self-signed certificate', () => pki.selfSigned, {}, /signed by a CA we do not trust \(DEPTH_ZERO_SELF_SIGNED_CERT\); set CCAI_TLS_CA_FILE/],
    ['an expired certificate', () => pki.expired, {}, /certificate \(or one in its chain\) has expired \(CERT_HAS_EXPIRED\)/],
  ])('refuses %s with a transport failure that says why', async (_name, cert, tls, reason) => {
    const s = await setup(cert(), tls);
    const failure = await failureOf(s);
    expect(failure.message).toMatch(new RegExp(`TLS connection to 127\\.0\\.0\\.1:${s.peer.port} failed: `));
    expect(failure.message).toMatch(reason);
    expect(s.peer.received).toEqual([]);
  });

  it.each([
    ['TLS 1.3 (alert 116 after our handshake)', 'TLSv1.3'],
    ['TLS 1.2 (refused during the handshake)', 'TLSv1.2'],
  ] as const)('a CCAI server that requires a client certificate we do not have, %s: the failure says so', async (_name, version) => {
    const mtls = { requestCert: true, rejectUnauthorized: true, ca: readFileSync(pki.caFile), maxVersion: version };
    const s = await setup(pki.server, {}, mtls);
    const failure = await failureOf(s);
    expect(failure.message).toMatch(/requires a client certificate.*; set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE/);
  });

  it('a CCAI server that resets the connection right after the handshake: a client certificate is named as the likely cause', async () => {
    const s = await setup(pki.server, {});
    s.peer.server.prependListener('secureConnection', (socket: TLSSocket) => socket.destroy());
    const failure = await failureOf(s);
    expect(failure.message).toMatch(/requires a client certificate \((closed right after the handshake|ECONNRESET)\); set SIP_TLS_CERT_FILE/);
  });

  it('mutual TLS: presents SIP_TLS_CERT_FILE, and a bot opening a new TLS connection to our Contact is heard', async () => {
    const s = await setup(
      pki.server,
      { certFile: pki.client.cert, keyFile: pki.client.key },
      { requestCert: true, rejectUnauthorized: true, ca: readFileSync(pki.caFile) },
    );
    const outgoing = s.backend.invite(s.request);
    const invite = await s.peer.next('INVITE');
    expect((invite.socket as TLSSocket).authorized).toBe(true);
    const listener = s.backend.localPort;
    expect(invite.message.sip.get('contact')).toBe(`<sips:talkdesk@127.0.0.1:${listener};transport=tls>`);
    s.peer.reply(invite, 200, 'OK', BOT_SDP);
    await outgoing.answered;
    await s.peer.next('ACK');

    const fresh = await s.peer.connectTo(listener, (port) => [
      tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(pki.caFile), checkServerIdentity: () => undefined }),
      'secureConnect',
    ]);
    s.peer.bye(invite, fresh);
    expect((await s.peer.next('200')).socket).toBe(fresh);
    expect(s.request.delegate.onBye).toHaveBeenCalledOnce();
    await vi.waitFor(() => expect(s.backend.openConnections).toBe(0), { timeout: 3000 });
  });

  it('CCAI_TLS_VERIFY=false connects to a self-signed peer, warning at start and on the connection', async () => {
    const s = await setup(pki.selfSigned, { verify: false, caFile: undefined });
    s.backend.invite(s.request);
    await s.peer.next('INVITE');
    expect(messages(s)).toContain('CCAI_TLS_VERIFY=false: the CCAI SIP server certificate is NOT verified; anyone on the path can impersonate it');
    const warned = s.lines.find((l) => l.msg === 'CCAI_TLS_VERIFY=false: SIP TLS connection not verified');
    expect(warned).toMatchObject({ peer: `127.0.0.1:${s.peer.port}`, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('start() names the setting whose file cannot be read', async () => {
    const backend = loopbackBackend({ transport: 'tls', tls: { port: 0, verify: true, caFile: '/nonexistent/ca.pem' }, ccaiHost: 'x' });
    await expect(backend.start()).rejects.toThrow('embedded SIP backend cannot start: cannot read CCAI_TLS_CA_FILE /nonexistent/ca.pem: ENOENT');
  });
});
