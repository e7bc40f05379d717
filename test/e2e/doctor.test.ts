import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Check } from '../../plugin/operations/doctor/check.js';
import { FakeDrachtio } from '../support/fake-drachtio.js';
import { makeTestPki, type TestPki } from '../support/pki.js';
import { buildPlugin } from '../support/plugin-process.js';
import { botPorts } from '../support/ports.js';
import { startSocatTls } from '../support/socat.js';
import { expectSippSuccess, startSipp } from '../support/sipp.js';

// `npm run doctor` as an operator runs it: the built command, the shipped jambonz-app.json, settings from the
// environment, against sipp bots answering OPTIONS (socat in front for TLS, as in calls.test.ts).
const UDP_BOT = botPorts(1);
const TLS_BOT = botPorts(20);
/** socat's TLS port in front of TLS_BOT; nothing listens there in the other tests */
const SOCAT_TLS_PORT = botPorts(21).sipPort;
/** where nothing listens: this file's TLS bot port while its test is not running */
const NOTHING_THERE = TLS_BOT.sipPort;
const BOTS = JSON.stringify([{ botId: 'st-doctor', clientId: 'cs-doctor', clientSecret: 'doctor-secret' }]);
/** 50 pairs, for MAX_CALLS 20 */
const RTP_RANGE = { RTP_PORT_MIN: '36000', RTP_PORT_MAX: '36099', MAX_CALLS: '20' };
const GOOD = { BOTS, ...RTP_RANGE, CCAI_SIP_PORT: String(UDP_BOT.sipPort) };

const OUT_DIR = 'node_modules/.cache/gw-doctor-test';
let pki: TestPki;
beforeAll(async () => {
  buildPlugin(OUT_DIR);
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());

interface DoctorRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** async, not spawnSync: sipp and socat answer from this process's event loop's children while it runs */
function doctor(env: Record<string, string>, args: string[] = []): Promise<DoctorRun> {
  const child = spawn(process.execPath, [`${OUT_DIR}/scripts/doctor.js`, '--timeout-ms', '1500', ...args], {
    env: { PATH: process.env.PATH, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

async function doctorJson(env: Record<string, string>): Promise<{ status: number | null; checks: Check[] }> {
  const run = await doctor(env, ['--json']);
  expect(run.stderr).toBe('');
  return { status: run.status, checks: (JSON.parse(run.stdout) as { checks: Check[] }).checks };
}

function titled(checks: readonly Check[], title: string): Check | undefined {
  return checks.find((c) => c.title === title);
}

describe('npm run doctor', () => {
  it('a good setup: every line ✓, CCAI answers the OPTIONS, exit 0', async () => {
    const bot = await startSipp({ scenario: 'uas_options.xml', ...UDP_BOT });
    const run = await doctor(GOOD);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.slice(0, -1).every((line) => line.startsWith('✓ ')), run.stdout).toBe(true);
    expect(run.stdout).toMatch(new RegExp(`^✓ SIP OPTIONS: sip:127\\.0\\.0\\.1:${UDP_BOT.sipPort};transport=udp answered 200 OK in \\d+ ms \\(sipp-ccai\\)$`, 'm'));
    expect(run.stdout).toContain('✓ RTP ports: 36000–36099 on 127.0.0.1: all 50 RTP/RTCP port pairs bind\n');
    expect(lines.at(-1)).toMatch(/^\d+ ✓ {2}0 ⚠ {2}0 ✗$/);
    expect(run.status).toBe(0);
    expectSippSuccess(await bot.done);
  });

  it('TLS with a CCAI certificate from a CA it was not told to trust: ✗ naming the cause and CCAI_TLS_CA_FILE', async () => {
    await startSocatTls({ port: SOCAT_TLS_PORT, target: TLS_BOT.sipPort, cert: pki.foreign });
    const { status, checks } = await doctorJson({ ...GOOD, CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(SOCAT_TLS_PORT), CCAI_TLS_CA_FILE: pki.caFile });
    expect(titled(checks, 'SIP transport')).toEqual({
      status: 'fail',
      title: 'SIP transport',
      detail: `TLS connection to 127.0.0.1:${SOCAT_TLS_PORT} failed: the CCAI server certificate is signed by a CA we do not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); set CCAI_TLS_CA_FILE to the CA bundle that signs it`,
    });
    expect(titled(checks, 'SIP OPTIONS')).toBeUndefined();
    expect(status).toBe(1);
  });

  it('TLS to a CCAI certificate it trusts: the certificate and the OPTIONS over TLS are checked, and a short expiry is a ⚠', async () => {
    const bot = await startSipp({ scenario: 'uas_options.xml', ...TLS_BOT, transport: 't1' });
    await startSocatTls({ port: SOCAT_TLS_PORT, target: TLS_BOT.sipPort, cert: pki.server });
    const { status, checks } = await doctorJson({ ...GOOD, CCAI_SIP_TRANSPORT: 'tls', CCAI_SIP_PORT: String(SOCAT_TLS_PORT), CCAI_TLS_CA_FILE: pki.caFile });
    expect(titled(checks, 'CCAI certificate')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^verifies for 127\.0\.0\.1 \(IP Address:127\.0\.0\.1, DNS:ccai\.test\), issued by Test SIP CA, [01] days left \(expires /),
    });
    expect(titled(checks, 'SIP OPTIONS')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/;transport=tls answered 200 OK in \d+ ms/) });
    expect(status).toBe(0);
    expectSippSuccess(await bot.done);
  });

  it.each([
    ['TCP refused', { CCAI_SIP_TRANSPORT: 'tcp' }, 'SIP transport', `TCP connection to 127.0.0.1:${NOTHING_THERE} failed: ECONNREFUSED; check CCAI_SIP_HOST, CCAI_SIP_PORT and CCAI_SIP_TRANSPORT`],
    ['UDP unanswered', { CCAI_SIP_TRANSPORT: 'udp' }, 'SIP OPTIONS', `no answer from sip:127.0.0.1:${NOTHING_THERE};transport=udp within 1500 ms`],
  ])('an unreachable CCAI (%s): ✗ with the reason', async (_, env, title, detail) => {
    const { status, checks } = await doctorJson({ ...GOOD, ...env, CCAI_SIP_PORT: String(NOTHING_THERE) });
    expect(titled(checks, title)).toMatchObject({ status: 'fail', detail });
    expect(status).toBe(1);
  });

  it('an RTP port range another process holds: ✗ with the count and the settings to move', async () => {
    const held: Socket[] = [];
    for (let port = 36100; port <= 36109; port += 2) {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
      held.push(socket);
    }
    try {
      const { status, checks } = await doctorJson({ ...GOOD, RTP_PORT_MIN: '36100', RTP_PORT_MAX: '36109', MAX_CALLS: '5', CCAI_SIP_PORT: String(NOTHING_THERE), CCAI_SIP_TRANSPORT: 'tcp' });
      expect(titled(checks, 'RTP ports')).toEqual({
        status: 'fail',
        title: 'RTP ports',
        detail: '36100–36109 on 127.0.0.1: all 5 RTP/RTCP port pairs are in use by another process',
        fix: 'stop what holds them (ss -ulpn shows it), or move RTP_PORT_MIN–RTP_PORT_MAX to a free range',
      });
      expect(status).toBe(1);
    } finally {
      await Promise.all(held.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    }
  });

  it('SIP_BACKEND=drachtio: ✓ with the right secret, ✗ naming DRACHTIO_SECRET with a wrong one', async () => {
    const bot = await startSipp({ scenario: 'uas_options.xml', ...UDP_BOT });
    const drachtio = await FakeDrachtio.start();
    try {
      const env = { ...GOOD, SIP_BACKEND: 'drachtio', DRACHTIO_PORT: String(drachtio.port) };
      const good = await doctorJson({ ...env, DRACHTIO_SECRET: drachtio.secret });
      expect(titled(good.checks, 'drachtio-server')).toMatchObject({ status: 'ok' });
      expect(good.status).toBe(0);
      expectSippSuccess(await bot.done);
      const wrong = await doctorJson({ ...env, DRACHTIO_SECRET: 'not-the-secret', CCAI_SIP_PORT: String(NOTHING_THERE) });
      expect(titled(wrong.checks, 'drachtio-server')).toMatchObject({ status: 'fail', detail: expect.stringContaining('refused our secret (check DRACHTIO_SECRET)') });
      expect(wrong.status).toBe(1);
    } finally {
      await drachtio.close();
    }
  });

  it('invalid settings: one ✗ per setting, nothing else checked', async () => {
    const run = await doctor({ ...GOOD, RTP_PORT_MIN: '36001', CCAI_SIP_TRANSPORT: 'sctp' });
    expect(run.stdout).toMatch(/^✗ RTP_PORT_MIN: must be an even integer between 1024 and 65534 \(got "36001" from environment variable RTP_PORT_MIN\)\n✗ CCAI_SIP_TRANSPORT: must be one of udp, tcp, tls .*\n0 ✓ {2}0 ⚠ {2}2 ✗\n$/);
    expect(run.status).toBe(1);
  });

  it('a bad --timeout-ms: exit 2 with the usage, no check run', async () => {
    const run = await doctor(GOOD, ['--timeout-ms', '5s']);
    expect(run.stderr).toBe('--timeout-ms must be an integer number of milliseconds from 1 to 60000\nusage: npm run doctor -- [--json] [--timeout-ms <ms, default 5000>]\n');
    expect(run.stdout).toBe('');
    expect(run.status).toBe(2);
  });
});
