import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { requireTool } from '../support/tools.js';
import { gatewayPerTest } from './gateway-per-test.js';

// certbot and cert-manager renew the wss certificate by writing new files and renaming them over the old ones:
// the gateway must serve the new pair to new connections without a restart and without dropping a live call.

interface Pair {
  cert: string;
  key: string;
  fingerprint: string;
}

let dir: string;
let certs: { a: Pair; b: Pair };
let ca: Buffer[];

async function makePair(name: string): Promise<Pair> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await promisify(execFile)(requireTool('openssl'), [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', key, '-out', cert,
    '-subj', `/CN=127.0.0.1/O=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  return { cert, key, fingerprint: new X509Certificate(await readFile(cert)).fingerprint256 };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wss-reload-'));
  certs = { a: await makePair('a'), b: await makePair('b') };
  ca = [await readFile(certs.a.cert), await readFile(certs.b.cert)];
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const startGateway = gatewayPerTest();

/** A directory holding the served pair as cert.pem/key.pem, the way certbot's live/ directory does. */
async function liveDir(pair: Pair): Promise<{ cert: string; key: string }> {
  const live = await mkdtemp(join(dir, 'live-'));
  const files = { cert: join(live, 'cert.pem'), key: join(live, 'key.pem') };
  await copyFile(pair.cert, files.cert);
  await copyFile(pair.key, files.key);
  return files;
}

/** Replace a file the way renewal tools do: write a new file beside it, then rename it over the old one. */
async function renameOver(target: string, content: Buffer | string): Promise<void> {
  await writeFile(`${target}.new`, content);
  await rename(`${target}.new`, target);
}

async function renew(files: { cert: string; key: string }, pair: Pair): Promise<void> {
  await renameOver(files.key, await readFile(pair.key));
  await renameOver(files.cert, await readFile(pair.cert));
}

function gatewayWith(files: { cert: string; key: string }): Promise<Gateway> {
  // START_TIMEOUT_MS: the open Talkdesk stream sends no start and must outlive the test
  return startGateway({
    TLS_CERT_FILE: files.cert,
    TLS_KEY_FILE: files.key,
    START_TIMEOUT_MS: '60000',
    RTP_PORT_MIN: '33200',
    RTP_PORT_MAX: '33298',
  });
}

/** The certificate a new TLS connection to the gateway is served. */
async function servedFingerprint(port: number): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port, ca });
  await once(socket, 'secureConnect');
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

/** An authenticated Talkdesk wss stream, open, and the certificate it was served. */
async function openStream(port: number): Promise<{ ws: WebSocket; fingerprint: string }> {
  const token = makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret);
  const url = talkdeskUrl({ port, sipuri: '+17345551234', token, botId: EXAMPLE_BOT.botId, accountId: 'acc' });
  const ws = new WebSocket(url.replace('ws://', 'wss://'), { ca });
  let fingerprint = '';
  // ws emits 'open' in the same tick as 'upgrade'
  ws.once('upgrade', (res: { socket: TLSSocket }) => (fingerprint = res.socket.getPeerCertificate().fingerprint256));
  await once(ws, 'open');
  return { ws, fingerprint };
}

/** The stream still carries frames both ways: a ping is answered. */
async function stillOpen(ws: WebSocket): Promise<void> {
  expect(ws.readyState).toBe(WebSocket.OPEN);
  ws.ping();
  await once(ws, 'pong');
}

describe('wss certificate reload', () => {
  it('a renewed pair renamed into place is served to new connections; the open stream stays up', async () => {
    const files = await liveDir(certs.a);
    const gw = await gatewayWith(files);
    const stream = await openStream(gw.app.port);
    expect(stream.fingerprint).toBe(certs.a.fingerprint);

    await renew(files, certs.b);
    await expect.poll(() => servedFingerprint(gw.app.port), { timeout: 5_000, interval: 100 }).toBe(certs.b.fingerprint);
    expect(linesWith(gw.logs, 'TLS certificate reloaded: new connections get it').at(-1)).toMatchObject({
      trigger: 'file change',
      fingerprint256: certs.b.fingerprint,
    });
    await stillOpen(stream.ws);

    // the watch outlives the rename: the next renewal is seen too
    await renew(files, certs.a);
    await expect.poll(() => servedFingerprint(gw.app.port), { timeout: 5_000, interval: 100 }).toBe(certs.a.fingerprint);
    await stillOpen(stream.ws);
    stream.ws.close();
  });

  it('reloadCertificate() (what SIGHUP calls) swaps at once and says what is served; unchanged files change nothing', async () => {
    const files = await liveDir(certs.a);
    const gw = await gatewayWith(files);
    const stream = await openStream(gw.app.port);

    await renew(files, certs.b);
    // `changed` is not asserted: on a slow machine the directory watch may have swapped it a moment earlier
    expect(await gw.app.reloadCertificate('SIGHUP')).toMatchObject({ ok: true, fingerprint256: certs.b.fingerprint });
    expect(await servedFingerprint(gw.app.port)).toBe(certs.b.fingerprint);
    expect(await gw.app.reloadCertificate('SIGHUP')).toMatchObject({ ok: true, changed: false });
    await stillOpen(stream.ws);
    stream.ws.close();
  });

  it('a pair that does not load keeps the current certificate, and the log says why', async () => {
    const files = await liveDir(certs.a);
    const gw = await gatewayWith(files);

    await renameOver(files.key, await readFile(certs.b.key)); // B's key under A's certificate
    expect(await gw.app.reloadCertificate('SIGHUP')).toEqual({ ok: false, reason: expect.stringMatching(/do not load as a pair.*key values mismatch/) });
    await renameOver(files.cert, 'not a certificate\n');
    expect(await gw.app.reloadCertificate('SIGHUP')).toEqual({ ok: false, reason: expect.stringMatching(/holds no PEM certificate/) });
    await rm(files.cert);
    expect(await gw.app.reloadCertificate('SIGHUP')).toEqual({ ok: false, reason: expect.stringMatching(/cannot read .*cert\.pem: ENOENT/) });
    expect(await servedFingerprint(gw.app.port)).toBe(certs.a.fingerprint);
    expect(linesWith(gw.logs, 'TLS certificate not reloaded: keeping the current one').filter((l) => l['trigger'] === 'SIGHUP')).toHaveLength(3);

    // fixed: the next reload takes it
    await renameOver(files.cert, await readFile(certs.b.cert));
    expect(await gw.app.reloadCertificate('SIGHUP')).toMatchObject({ ok: true, fingerprint256: certs.b.fingerprint });
    expect(await servedFingerprint(gw.app.port)).toBe(certs.b.fingerprint);
  });

  it('a symlink swapped to a new directory (cert-manager ..data, certbot live/ → archive/) is followed', async () => {
    const mount = await mkdtemp(join(dir, 'mount-'));
    for (const [name, pair] of [['v1', certs.a], ['v2', certs.b]] as const) {
      await mkdir(join(mount, name));
      await copyFile(pair.cert, join(mount, name, 'tls.crt'));
      await copyFile(pair.key, join(mount, name, 'tls.key'));
    }
    await symlink('v1', join(mount, '..data'));
    await symlink('..data/tls.crt', join(mount, 'tls.crt'));
    await symlink('..data/tls.key', join(mount, 'tls.key'));
    const gw = await gatewayWith({ cert: join(mount, 'tls.crt'), key: join(mount, 'tls.key') });
    expect(await servedFingerprint(gw.app.port)).toBe(certs.a.fingerprint);

    await symlink('v2', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    await expect.poll(() => servedFingerprint(gw.app.port), { timeout: 5_000, interval: 100 }).toBe(certs.b.fingerprint);
  });

  it('other files changing in the same directory cause no reload', async () => {
    const files = await liveDir(certs.a);
    const gw = await gatewayWith(files);
    await renameOver(join(files.cert, '..', 'README'), 'not ours\n');
    await writeFile(join(files.cert, '..', 'other.log'), 'busy\n');
    await new Promise((resolve) => setTimeout(resolve, 800)); // past the 500 ms debounce
    expect(gw.logs.filter((l) => l['component'] === 'tls')).toEqual([]);
  });

  it('without TLS there is nothing to reload', async () => {
    const gw = await startGateway({ RTP_PORT_MIN: '33200', RTP_PORT_MAX: '33298' });
    expect(await gw.app.reloadCertificate('SIGHUP')).toEqual({ ok: false, reason: expect.stringMatching(/plain ws:\/\//) });
  });
});
