import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { onTestFinished, TestRunner } from 'vitest';
import { FRAME_BYTES, pcmuPcap, speechUlaw } from './audio.js';
import { requireTool } from './tools.js';

/** What the bot scenarios say; tests compare the audio that reaches Talkdesk with it, bit for bit. */
export const BOT_TTS_TEXT = 'Hello, this is the test bot.';
/** The file name the bot scenarios play. */
const TTS_PCAP = 'pcmu_tts.pcap';
/** sipp's pause after starting the TTS = its length plus this, so the DTMF pcap does not cut the speech short. */
const TTS_PAUSE_MARGIN_MS = 200;
/** Debian's sip-tester ships the RFC 4733 DTMF pcaps (PT 101) here (sip-notes §3.1). */
const SHIPPED_PCAP_DIR = '/usr/share/sip-tester';
const SCENARIO_DIR = join(packageRoot(), 'test', 'sipp');

/** sipp prints a full statistics screen every second on stdout; its last screen is all that helps. */
const STDOUT_KEEP_CHARS = 16_384;
/** After SIGTERM sipp prints its final screen and exits within milliseconds; SIGKILL covers a hung one. */
const KILL_GRACE_MS = 2_000;
/** sipp binds its sockets within a few ms of starting. */
const READY_TIMEOUT_MS = 5_000;
const READY_POLL_MS = 20;
/** Below vitest's 30 s testTimeout, so a hung call fails with sipp's logs instead of a bare vitest timeout. */
const DEFAULT_TIMEOUT_MS = 25_000;

/** sipp's documented exit codes, for failure messages. */
const EXIT_MEANING: Record<number, string> = {
  1: 'at least one call failed',
  97: 'exit on internal command',
  99: 'normal exit without any call processed',
  254: 'fatal error binding a socket',
  255: 'fatal error (often a scenario that does not load)',
};

export interface SippOptions {
  /** File name in test/sipp. */
  scenario: string;
  sipPort: number;
  mediaPort: number;
  /** `host:port` to call; only for UAC scenarios. */
  remote?: string;
  /** `t1` (one TCP connection) is for TLS tests with socat in front (sip-notes §2.4). Default `u1`. */
  transport?: 'u1' | 't1';
  /** Echo every RTP packet back to its source. Never on both sipps of one test: they would bounce packets forever. */
  rtpEcho?: boolean;
  /** The process is killed (and the run fails) after this long. Default 25 s. */
  timeoutMs?: number;
  /**
   * The URI bot scenarios put in their Contact (`[contact]`). Default: sipp's own address and transport. Behind socat
   * on TLS it must be socat's port and `;transport=tls`, or the plugin would bypass socat (sip-notes §2.4).
   */
  contact?: string;
  /** Appended to the command line, e.g. `['-s', 'bot']` or `['-key', 'rtp_port', '16510']`. */
  extraArgs?: string[];
}

export interface SippResult {
  scenario: string;
  /** sipp's exit code (0: no call failed), or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The harness ended sipp after timeoutMs. */
  timedOut: boolean;
  /** stop() ended sipp while it still ran. sipp exits 0 on SIGTERM, so only this tells a cut-short run apart. */
  stopped: boolean;
  stdout: string;
  stderr: string;
  /** Every SIP message sent and received (-trace_msg). */
  messages: string;
  /** Why calls failed (-trace_err). */
  errors: string;
  /** The scenario's <log> lines (-trace_logs). */
  logs: string;
  runDir: string;
}

export interface SippProcess {
  pid: number;
  /** Holds the scenario, the pcaps it plays and sipp's logs. Removed by stop() after a clean run. */
  runDir: string;
  /** Settles when sipp exits, whatever the reason; never rejects. */
  done: Promise<SippResult>;
  /** Ends sipp if it still runs; resolves once it is gone. */
  stop(): Promise<SippResult>;
}

export interface SippBot extends SippProcess {
  /** What the bot says: the exact μ-law payloads of the RTP it plays. */
  ttsUlaw: Buffer;
}

/**
 * A sipp bot (UAS) from test/sipp for the plugin to call on 127.0.0.1:sipPort. Resolves once sipp listens.
 * Scenarios playing pcmu_tts.pcap get BOT_TTS_TEXT, and those declaring <Global variables="tts_ms"/> its length.
 */
export async function startSippBot(opts: Omit<SippOptions, 'remote'>): Promise<SippBot> {
  const ttsUlaw = await speechUlaw(BOT_TTS_TEXT);
  const ttsMs = (ttsUlaw.length / FRAME_BYTES) * 20;
  const proc = await launch(opts, {
    files: { [TTS_PCAP]: pcmuPcap(ttsUlaw) },
    globals: { tts_ms: String(ttsMs + TTS_PAUSE_MARGIN_MS) },
  });
  return { ...proc, ttsUlaw };
}

/** Any scenario from test/sipp, e.g. a probe UAC calling a bot (`remote`). Resolves once sipp's sockets are bound. */
export function startSipp(opts: SippOptions): Promise<SippProcess> {
  return launch(opts, { files: {}, globals: {} });
}

/**
 * Throws unless sipp ran its scenario to the end and exited 0, with everything needed to see why: exit code,
 * stderr, error log, sipp's last screen (which step it waited at) and the last SIP messages.
 */
export function expectSippSuccess(result: SippResult): void {
  if (!ranToEnd(result)) throw new Error(describeFailure(result));
}

function ranToEnd(r: SippResult): boolean {
  return r.code === 0 && !r.timedOut && !r.stopped;
}

interface Staging {
  /** Written into the run dir before start. */
  files: Record<string, Buffer>;
  /** Values for the scenario's <Global> variables. */
  globals: Record<string, string>;
}

const running = new Set<ChildProcess>();

// Last resort against orphans: a test file that crashes still takes its sipps with it.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function launch(opts: SippOptions, staging: Staging): Promise<SippProcess> {
  const sipp = requireTool('sipp');
  const scenarioText = await readFile(join(SCENARIO_DIR, opts.scenario), 'utf8');
  const runDir = await mkdtemp(join(tmpdir(), 'talkdesk-ccai-sipp-'));
  await stage(runDir, opts.scenario, scenarioText, staging.files);

  const transport = opts.transport ?? 'u1';
  const log = (name: string) => join(runDir, name);
  const args = [
    ...(opts.remote === undefined ? [] : [opts.remote]),
    ...['-sf', opts.scenario, '-t', transport, '-i', '127.0.0.1', '-p', String(opts.sipPort)],
    ...['-mi', '127.0.0.1', '-mp', String(opts.mediaPort)],
    ...(opts.rtpEcho === true ? ['-rtp_echo'] : []),
    ...['-key', 'contact', opts.contact ?? `sip:bot@127.0.0.1:${opts.sipPort};transport=${transport === 'u1' ? 'udp' : 'tcp'}`],
    ...['-m', '1', '-nostdin'],
    ...['-trace_err', '-error_file', log('errors.log')],
    ...['-trace_msg', '-message_file', log('messages.log')],
    ...['-trace_logs', '-log_file', log('logs.log')],
    // sipp aborts on a -set for a global the scenario does not declare
    ...declaredGlobals(scenarioText).flatMap((name) => {
      const value = staging.globals[name];
      return value === undefined ? [] : ['-set', name, value];
    }),
    ...(opts.extraArgs ?? []),
  ];

  // sipp looks for pcaps next to the scenario, then in the cwd: both are the run dir
  const child = spawn(sipp, args, { cwd: runDir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-STDOUT_KEEP_CHARS);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  let timedOut = false;
  let stopped = false;
  const timer = setTimeout(() => {
    timedOut = true;
    terminate(child);
  }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      stderr += `\nspawn failed: ${err.message}`;
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const done: Promise<SippResult> = exited.then(async ({ code, signal }) => {
    clearTimeout(timer);
    running.delete(child);
    return {
      scenario: opts.scenario,
      code,
      signal,
      timedOut,
      stopped,
      stdout,
      stderr,
      messages: await readIfExists(log('messages.log')),
      errors: await readIfExists(log('errors.log')),
      logs: await readIfExists(log('logs.log')),
      runDir,
    };
  });

  const stop = async (): Promise<SippResult> => {
    if (terminate(child)) stopped = true;
    const result = await done;
    // a failed run keeps its directory for a post-mortem; describeFailure() names it
    if (ranToEnd(result)) await rm(runDir, { recursive: true, force: true });
    return result;
  };
  if (TestRunner.getCurrentTest() !== undefined) {
    onTestFinished(async () => {
      await stop();
    });
  }

  // with t1 sipp listens on the SIP port even as a UAC (it also connects out from it)
  const sockets: Socket[] = [
    { proto: transport === 'u1' ? 'udp' : 'tcp', port: opts.sipPort },
    { proto: 'udp', port: opts.mediaPort },
  ];
  const ready = await Promise.race([waitForSockets(child, sockets), exited.then(() => false)]);
  if (!ready || child.pid === undefined) {
    const result = await stop();
    // nothing ran: stderr and the error log say it all
    await rm(runDir, { recursive: true, force: true });
    throw new Error(`sipp ${opts.scenario} never got ready (a port in use?)\n${describeFailure(result)}`);
  }
  return { pid: child.pid, runDir, done, stop };
}

async function stage(runDir: string, scenario: string, text: string, files: Record<string, Buffer>): Promise<void> {
  await writeFile(join(runDir, scenario), text);
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(runDir, name), bytes);
  for (const pcap of playedPcaps(text)) {
    if (existsSync(join(runDir, pcap))) continue;
    const shipped = join(SHIPPED_PCAP_DIR, pcap);
    if (!existsSync(shipped)) {
      throw new Error(`${scenario} plays ${pcap}, which the harness does not make and ${SHIPPED_PCAP_DIR} lacks`);
    }
    await copyFile(shipped, join(runDir, pcap));
  }
}

function playedPcaps(scenarioText: string): string[] {
  return [...scenarioText.matchAll(/play_pcap_audio="([^"]+)"/g)].map((m) => m[1] as string);
}

function declaredGlobals(scenarioText: string): string[] {
  return [...scenarioText.matchAll(/<Global\s+variables="([^"]*)"/g)].flatMap((m) => (m[1] as string).split(','));
}

/** Ends `child` unless it already exited; says whether it had to. */
function terminate(child: ChildProcess): boolean {
  if (child.exitCode !== null || child.signalCode !== null) return false;
  child.kill('SIGTERM');
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, KILL_GRACE_MS).unref();
  return true;
}

interface Socket {
  proto: 'udp' | 'tcp';
  port: number;
}

/**
 * Waits until `child` itself owns a socket bound to each port, read from /proc: sipp prints nothing reliable when
 * ready, and probing by binding the port ourselves could steal it from a sipp that is about to bind.
 */
async function waitForSockets(child: ChildProcess, wanted: Socket[]): Promise<boolean> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < deadline && child.exitCode === null && child.pid !== undefined) {
    const inodes = await socketInodes(child.pid);
    const bound = await Promise.all(wanted.map((s) => portOwned(s, inodes)));
    if (bound.every(Boolean)) return true;
    await sleep(READY_POLL_MS);
  }
  return false;
}

async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const fdDir = `/proc/${pid}/fd`;
  const fds = await readdir(fdDir).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(join(fdDir, fd)).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1] as string);
  }
  return inodes;
}

/** TCP state 0A is LISTEN; a bound UDP socket has no state worth checking. */
async function portOwned({ proto, port }: Socket, inodes: Set<string>): Promise<boolean> {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    const lines = (await readIfExists(table)).split('\n').slice(1);
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !f[1]?.endsWith(`:${portHex}`)) continue;
      if (proto === 'tcp' && f[3] !== '0A') continue;
      if (inodes.has(f[9] as string)) return true;
    }
  }
  return false;
}

async function readIfExists(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

function describeFailure(r: SippResult): string {
  const how = r.timedOut
    ? 'was killed after its timeout'
    : r.stopped
      ? 'was stopped before its scenario ended'
      : r.code !== null
        ? `exited ${r.code}${EXIT_MEANING[r.code] === undefined ? '' : ` (${EXIT_MEANING[r.code]})`}`
        : `was ended by ${r.signal ?? 'an unknown cause'}`;
  const section = (title: string, text: string) => `--- ${title} ---\n${text.trim() || '(empty)'}`;
  return [
    `sipp ${r.scenario} ${how}${existsSync(r.runDir) ? `; run dir ${r.runDir}` : ''}`,
    section('stderr', r.stderr),
    section('error log', r.errors),
    section('last screen', lastScreen(r.stdout)),
    section('last SIP messages', r.messages.slice(-4_000)),
  ].join('\n');
}

/** sipp redraws its statistics screen on stdout; the last one shows the scenario step each call waits at. */
function lastScreen(stdout: string): string {
  const at = stdout.lastIndexOf('------------------------------ Scenario Screen');
  return at === -1 ? stdout.slice(-3_000) : stdout.slice(at);
}

/** The directory holding package.json: test/sipp is found from it whether this file runs from source or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above test/support');
    dir = parent;
  }
  return dir;
}
