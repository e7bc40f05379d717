import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { onTestFinished } from 'vitest';
import type { KeyPair } from './pki.js';
import { requireTool } from './tools.js';

/** socat binds its listening socket within milliseconds of starting. */
const READY_TIMEOUT_MS = 5_000;
const READY_POLL_MS = 20;

export interface SocatTlsOptions {
  /** the TLS port socat listens on */
  port: number;
  /** the plain TCP port it forwards each connection to (a sipp bot on `-t t1`) */
  target: number;
  /** the certificate it presents */
  cert: KeyPair;
}

export interface SocatProcess {
  /** what socat wrote on stderr so far: its errors, such as a handshake the client refused */
  stderr(): string;
}

/**
 * socat terminating TLS in front of a sipp bot on plain TCP (sip-notes §2.4): Debian's sipp has no TLS. It forks per
 * connection and does the handshake before dialling `target`, so a refused handshake never reaches the bot.
 * Stopped when the current test finishes; resolves once socat listens.
 */
export async function startSocatTls(opts: SocatTlsOptions): Promise<SocatProcess> {
  const socat = spawn(
    requireTool('socat'),
    [
      `openssl-listen:${opts.port},reuseaddr,fork,cert=${opts.cert.cert},key=${opts.cert.key},verify=0`,
      `tcp:127.0.0.1:${opts.target}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  socat.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => socat.once('close', () => resolve()));
  onTestFinished(async () => {
    socat.kill('SIGTERM');
    await exited;
  });
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (!(await listening(opts.port))) {
    if (socat.exitCode !== null || performance.now() > deadline) throw new Error(`socat did not listen on ${opts.port}: ${stderr}`);
    await sleep(READY_POLL_MS);
  }
  return { stderr: () => stderr };
}

/** a TCP socket in LISTEN (0A) on `port`, read from /proc: probing with a connection would make socat dial the bot */
async function listening(port: number): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await readFile('/proc/net/tcp', 'utf8');
  return table.split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1]?.endsWith(hex) === true && f[3] === '0A';
  });
}
