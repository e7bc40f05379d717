import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { packageRoot } from './sipp.js';
import { requireTool } from './tools.js';

/** kamailio forks its workers and binds within a second on this machine */
const READY_TIMEOUT_MS = 10_000;

export interface KamailioOptions {
  /** where it listens, UDP and TCP */
  port: number;
  /** the sipp bot it relays every new INVITE to, on the transport it came by */
  botPort: number;
}

export interface KamailioProcess {
  /** what kamailio logged so far */
  log(): string;
}

/**
 * Debian's kamailio as a Record-Routing proxy (test/kamailio/proxy.cfg) in front of a sipp bot, in the foreground.
 * Stopped when the current test finishes; resolves once it says it listens.
 */
export async function startKamailio(opts: KamailioOptions): Promise<KamailioProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'kamailio-'));
  const template = await readFile(join(packageRoot(), 'test', 'kamailio', 'proxy.cfg'), 'utf8');
  const cfg = join(dir, 'proxy.cfg');
  await writeFile(cfg, template.replaceAll('@PROXY_PORT@', String(opts.port)).replaceAll('@BOT_PORT@', String(opts.botPort)));
  const kamailio = spawn(requireTool('kamailio'), ['-f', cfg, '-DD', '-E', '-Y', dir, '-P', join(dir, 'kamailio.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const collect = (chunk: string): void => void (log += chunk);
  kamailio.stdout.setEncoding('utf8').on('data', collect);
  kamailio.stderr.setEncoding('utf8').on('data', collect);
  const exited = new Promise<void>((resolve) => kamailio.once('close', () => resolve()));
  onTestFinished(async () => {
    kamailio.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });
  const listening = `udp: 127.0.0.1 [127.0.0.1]:${opts.port}`;
  const deadline = performance.now() + READY_TIMEOUT_MS;
  // the workers start after the listening sockets are printed: a little more for them to read
  while (!log.includes('processes (at least)')) {
    if (kamailio.exitCode !== null || performance.now() > deadline) throw new Error(`kamailio did not start on ${opts.port}:\n${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!log.includes(listening)) throw new Error(`kamailio does not listen on ${opts.port}:\n${log}`);
  return { log: () => log };
}
