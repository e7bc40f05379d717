import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTool } from './tools.js';

/** A loopback port free right now: the OS picks one for a listener that is closed again at once. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface BalancedServer {
  /** the server's name in HAProxy's backend (and in `show stat`) */
  name: string;
  port: number;
}

/** A server's state as HAProxy's `show stat` reports it: UP, DOWN, or on its way ("UP 1/2", "DOWN 1/2"), MAINT … */
export type ServerStates = Record<string, string>;

const BACKEND = 'talkdesk_gateways';

/**
 * A real HAProxy (Debian's `haproxy`) in front of plugin instances on loopback, as an operator would put it: HTTP
 * mode, round robin, each server health-checked on `GET /ready` (only a 200 keeps it in), WebSockets tunnelled. The
 * config is written to a temp dir, HAProxy runs in the foreground as our child (`-db`), and its admin socket answers
 * `show stat` so a test can see when HAProxy takes a server out.
 */
export class Haproxy {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    /** the frontend: where Talkdesk connects */
    readonly port: number,
    private readonly socketPath: string,
    readonly config: string,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }

  /** Starts HAProxy and waits (at most `timeoutMs`) until its admin socket answers. Fails with the install command
   * when haproxy is not installed. */
  static async start(servers: BalancedServer[], timeoutMs = 5_000): Promise<Haproxy> {
    const bin = requireTool('haproxy');
    const dir = await mkdtemp(join(tmpdir(), 'gw-haproxy-'));
    const socketPath = join(dir, 'admin.sock');
    // the frontend port is probed free, then bound by HAProxy: another process may take it in between, so try again
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = haproxyConfig(port, socketPath, servers);
      const file = join(dir, 'haproxy.cfg');
      await writeFile(file, config);
      const child = spawn(bin, ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const lb = new Haproxy(child, dir, port, socketPath, config);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const up = await Promise.race([lb.command('show info').then(() => true, () => false), exited.then(() => 'exited' as const)]);
        if (up === true) return lb;
        if (up === 'exited') {
          if (attempt < 3 && /cannot bind|Address already in use/i.test(lb.output)) break;
          await rm(dir, { recursive: true, force: true });
          throw new Error(`haproxy exited before it answered:\n${lb.output}\n--- ${file}:\n${config}`);
        }
        if (performance.now() > deadline) {
          await lb.stop();
          throw new Error(`haproxy did not answer on ${socketPath} within ${timeoutMs} ms:\n${lb.output}`);
        }
        await sleep(50);
      }
    }
  }

  /** What HAProxy printed (its alerts and warnings, e.g. "Server talkdesk_gateways/a is DOWN"). */
  get log(): string {
    return this.output;
  }

  /** Each backend server's state by name, from `show stat`. */
  async serverStates(): Promise<ServerStates> {
    const csv = await this.command('show stat');
    const [header, ...rows] = csv.split('\n').filter((l) => l.trim() !== '');
    const fields = header!.replace(/^# /, '').split(',');
    const px = fields.indexOf('pxname');
    const sv = fields.indexOf('svname');
    const status = fields.indexOf('status');
    const states: ServerStates = {};
    for (const row of rows) {
      const cols = row.split(',');
      if (cols[px] === BACKEND && cols[sv] !== 'BACKEND') states[cols[sv]!] = cols[status]!;
    }
    return states;
  }

  /** SIGTERM (HAProxy's hard stop), then SIGKILL if it lingers; removes the temp dir. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** One command on the admin socket: HAProxy answers and closes (non-interactive mode). */
  private command(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      let answer = '';
      const timer = setTimeout(() => socket.destroy(new Error(`haproxy: no answer to "${cmd}" within 2 s`)), 2_000);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(`${cmd}\n`));
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('close', (hadError) => {
        clearTimeout(timer);
        if (!hadError) resolve(answer);
      });
    });
  }
}

function haproxyConfig(port: number, socketPath: string, servers: BalancedServer[]): string {
  return `global
    stats socket ${socketPath} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # a Talkdesk stream is a WebSocket that lives as long as the call
    timeout tunnel 2h
    # the caller's address for the instances' auth rate limit (their TRUSTED_PROXIES names this proxy)
    option forwardfor

frontend talkdesk
    bind 127.0.0.1:${port}
    default_backend ${BACKEND}

backend ${BACKEND}
    balance roundrobin
    # only a 200 keeps an instance in: 429 (at MAX_CALLS) and 503 (draining, SIP backend down) take it out
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 200ms fall 2 rise 2
${servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port} check`).join('\n')}
`;
}
