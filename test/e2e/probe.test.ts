import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readWav } from '../../plugin/operations/probe/wav.js';
import type { ProbeReport } from '../../plugin/operations/probe/probe.js';
import { buildPlugin } from '../support/plugin-process.js';
import { botPorts } from '../support/ports.js';
import { startSippBot, type SippBot } from '../support/sipp.js';
import { requireTool } from '../support/tools.js';

// `npm run probe` as an operator runs it: the built command, the shipped jambonz-app.json and settings from the
// environment, calling sipp bots: one that escalates, one busy (486), one that never answers.
const OUT_DIR = 'node_modules/.cache/gw-probe-test';
const ESCALATE = botPorts(22);
const BUSY = botPorts(23);
const SILENT = botPorts(24);
const ENV = { RTP_PORT_MIN: '37000', RTP_PORT_MAX: '37098', INVITE_TIMEOUT_MS: '2000', MARK_TIMEOUT_MS: '500', CLOSE_WAIT_MS: '500' };

beforeAll(() => {
  requireTool('sipp');
  buildPlugin(OUT_DIR);
});

const bots: SippBot[] = [];
afterEach(async () => {
  for (const bot of bots.splice(0)) await bot.stop();
});

async function bot(scenario: string, ports: { sipPort: number; mediaPort: number }): Promise<SippBot> {
  const started = await startSippBot({ scenario, ...ports });
  bots.push(started);
  return started;
}

function probe(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${OUT_DIR}/scripts/probe.js`, ...args], { env: { PATH: process.env.PATH, ...ENV, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const target = (ports: { sipPort: number }): string => `sip:+17345551234@127.0.0.1:${ports.sipPort};transport=udp`;

describe('npm run probe', () => {
  it('calls a bot that escalates: exit 0 with the right expectation, its ladder and headers, a bit-exact recording', async () => {
    const sipp = await bot('uas_escalate.xml', ESCALATE);
    const dir = mkdtempSync(join(tmpdir(), 'probe-'));
    const wav = join(dir, 'bot.wav');
    const run = await probe(['--target', target(ESCALATE), '--dtmf', '5', '--record', wav, '--expect', 'escalate:billing', '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as ProbeReport;
    expect(report.verdict).toEqual({ pass: true, reason: 'as expected: stop{escalate, ringGroup billing}' });
    expect(report.requestUri).toBe(`sip:+17345551234@127.0.0.1:${ESCALATE.sipPort};transport=udp`);
    const lines = report.ladder.map((s) => `${s.dir} ${s.line}`);
    expect(lines[0]).toBe(`→ INVITE ${report.requestUri}`);
    expect(lines).toContain('← 200 OK (the answer, SDP)');
    const bye = report.ladder.find((s) => s.line === 'BYE' && s.dir === '←')!;
    expect(bye.headers).toMatchObject({ 'X-Escalate': 'true', 'X-Escalation-Data': expect.stringContaining('billing') });
    expect(Object.entries(bye.headers!).find(([name]) => name.toLowerCase() === 'user-to-user')?.[1]).toMatch(/^7b22/);
    expect(report.media).toMatchObject({ codec: 'PCMU/8000', payloadType: 0, address: '127.0.0.1', port: ESCALATE.mediaPort, srtp: false });
    expect(report.rtp).toMatchObject({ digitsToBot: 1, digitsFromBot: expect.arrayContaining([expect.any(String)]) });
    expect(report.rtp!.toBot.packets).toBeGreaterThan(50);
    expect(report.rtp!.fromBot.packets).toBeGreaterThan(50);
    expect(report.ending).toMatchObject({ outcome: 'escalate', cause: 'bot-escalate', ringGroup: 'billing', stop: { event: 'stop', stop: { command: 'escalate', ringGroup: 'billing' } } });

    // the recording is what the bot said, byte for byte, in a WAV any player reads
    const recorded = readWav(readFileSync(wav));
    expect(recorded.ok).toBe(true);
    if (!recorded.ok) return;
    expect(recorded.ulaw.indexOf(sipp.ttsUlaw)).toBeGreaterThanOrEqual(0);
    expect(report.recording).toEqual({ path: wav, bytes: recorded.ulaw.length });
    await sipp.done;

    // the same bot, a wrong expectation: exit 1, and the text report says why
    await bot('uas_escalate.xml', ESCALATE);
    const wrong = await probe(['--target', target(ESCALATE), '--expect', 'escalate:sales']);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/\nFAIL: expected stop\{escalate, ringGroup sales\}, got stop\{escalate, ringGroup billing\}\n$/);
    expect(wrong.stdout).toMatch(/^SIP \(sip:\+17345551234@127\.0\.0\.1:\d+;transport=udp\)\n +\d+ ms {2}→ INVITE /);
    expect(wrong.stdout).toContain('X-Escalate: true');
  });

  it('reports a busy bot (486) and one that never answers, as stop{error}', async () => {
    await bot('uas_busy.xml', BUSY);
    const busy = await probe(['--target', target(BUSY), '--expect', 'error', '--json']);
    expect(busy.code).toBe(0);
    const busyReport = JSON.parse(busy.stdout) as ProbeReport;
    expect(busyReport.ladder.map((s) => `${s.dir} ${s.line}`)).toContain('← 486 Busy Here');
    expect(busyReport.ending).toMatchObject({ outcome: 'error', cause: 'sip-486', stop: { stop: { command: 'error' } } });

    await bot('uas_noanswer.xml', SILENT);
    const silent = await probe(['--target', target(SILENT), '--json']);
    expect(silent.code).toBe(1); // no expectation: it must connect, and it did not
    const silentReport = JSON.parse(silent.stdout) as ProbeReport;
    expect(silentReport.verdict).toEqual({ pass: false, reason: 'the bot did not answer; stop{error}' });
    expect(silentReport.ladder.map((s) => `${s.dir} ${s.line}`)).toEqual(expect.arrayContaining(['→ CANCEL']));
    expect(silentReport.ending).toMatchObject({ outcome: 'error', cause: 'invite-timeout' });
  });

  it('refuses a WAV that is not 8 kHz mono, and bad arguments, with the reason and exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'probe-'));
    const stereo = join(dir, 'stereo.wav');
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36, 4);
    header.write('WAVEfmt ', 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(2, 22);
    header.writeUInt32LE(44100, 24);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    writeFileSync(stereo, header);
    const wav = await probe(['--sipuri', '+1555', '--wav', stereo]);
    expect(wav.code).toBe(1);
    expect(wav.stderr).toMatch(/^probe: --wav .*stereo\.wav: not usable as the caller's audio: it is 2 channel\(s\) at 44100 Hz, not 8000 Hz mono; convert it with: sox/);
    const args = await probe(['--sipuri', '+1555', '--expect', 'maybe']);
    expect(args.code).toBe(1);
    expect(args.stderr).toMatch(/^probe: --expect maybe: one of ok, error, escalate, escalate:<ring group>\nusage: npm run probe/);
  });
});
