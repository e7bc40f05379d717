import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTool } from './tools.js';

const run = promisify(execFile);

export interface KeyPair {
  cert: string;
  key: string;
}

/** Certificates made with openssl at test time, as file paths: what the gateway's settings point at. */
export interface TestPki {
  dir: string;
  /** the CA that signs `server`, `expired` and `client` (not `foreign`) */
  caFile: string;
  /** valid for IP 127.0.0.1 and DNS ccai.test */
  server: KeyPair;
  /** same names, signed by the CA, notAfter yesterday */
  expired: KeyPair;
  /** same names, signed by itself */
  selfSigned: KeyPair;
  client: KeyPair;
  /** same names, signed by another CA (not in `caFile`): a CCAI certificate the gateway was not told to trust */
  foreign: KeyPair;
  remove(): Promise<void>;
}

export const CERT_NAME = 'ccai.test';
const SAN = `subjectAltName=IP:127.0.0.1,DNS:${CERT_NAME}`;
/** P-256 keys: an RSA key takes a noticeable part of a second to generate */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function makeTestPki(): Promise<TestPki> {
  const openssl = requireTool('openssl');
  const dir = await mkdtemp(join(tmpdir(), 'talkdesk-ccai-pki-'));
  const path = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => run(openssl, args, { cwd: dir });
  await writeFile(path('san.cnf'), `${SAN}\n`);

  await ssl('req', '-x509', ...NEW_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Test SIP CA');
  await ssl('req', '-x509', ...NEW_KEY, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=Another SIP CA');
  await ssl('req', '-x509', ...NEW_KEY, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', `/CN=${CERT_NAME}`, '-addext', SAN);
  /** a leaf signed by `ca` (the test CA unless said); `days` -1 makes notAfter yesterday (OpenSSL 3.0 has no -not_after) */
  const leaf = async (name: string, serial: number, days: number, withSan: boolean, ca = 'ca'): Promise<KeyPair> => {
    await ssl('req', '-new', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name === 'client' ? 'gateway' : CERT_NAME}`);
    const ext = withSan ? ['-extfile', 'san.cnf'] : [];
    await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', String(serial), '-days', String(days), ...ext, '-out', `${name}.pem`);
    return { cert: path(`${name}.pem`), key: path(`${name}.key`) };
  };
  return {
    dir,
    caFile: path('ca.pem'),
    server: await leaf('server', 2, 2, true),
    expired: await leaf('expired', 3, -1, true),
    client: await leaf('client', 4, 2, false),
    foreign: await leaf('foreign', 5, 2, true, 'other-ca'),
    selfSigned: { cert: path('self.pem'), key: path('self.key') },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
