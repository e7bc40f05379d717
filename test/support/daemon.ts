import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { onTestFinished } from 'vitest';

export interface Daemon {
  /** everything it printed so far, stdout and stderr */
  output(): string;
  /** called after each chunk it prints */
  onOutput?: () => void;
}

/**
 * A real program the tests start (kamailio, baresip) in the foreground: its output collected, SIGTERMed when the
 * current test finishes and its scratch `dir` removed. Resolves once `ready(output)` holds; throws with what it
 * printed if it exits first or takes longer than `timeoutMs`.
 */
export async function startDaemon(
  command: string,
  args: string[],
  opts: { name: string; dir: string; ready: (output: string) => boolean; timeoutMs: number },
): Promise<Daemon> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const daemon: Daemon = { output: () => out };
  const collect = (chunk: string): void => {
    out += chunk;
    daemon.onOutput?.();
  };
  proc.stdout.setEncoding('utf8').on('data', collect);
  proc.stderr.setEncoding('utf8').on('data', collect);
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  onTestFinished(async () => {
    proc.kill('SIGTERM');
    await exited;
    await rm(opts.dir, { recursive: true, force: true });
  });
  const deadline = performance.now() + opts.timeoutMs;
  while (!opts.ready(out)) {
    if (proc.exitCode !== null || performance.now() > deadline) throw new Error(`${opts.name} did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return daemon;
}
