import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from './daemon.js';
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
  const kamailio = await startDaemon(requireTool('kamailio'), ['-f', cfg, '-DD', '-E', '-Y', dir, '-P', join(dir, 'kamailio.pid')], {
    name: `kamailio on ${opts.port}`,
    dir,
    // the workers start after the listening sockets are printed: a little more for them to read
    ready: (log) => log.includes('processes (at least)'),
    timeoutMs: READY_TIMEOUT_MS,
  });
  const listening = `udp: 127.0.0.1 [127.0.0.1]:${opts.port}`;
  if (!kamailio.output().includes(listening)) throw new Error(`kamailio does not listen on ${opts.port}:\n${kamailio.output()}`);
  return { log: kamailio.output };
}
