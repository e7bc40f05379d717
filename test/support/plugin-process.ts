import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * The built plugin as `npm start` runs it, in a process of its own. Each test file builds into a directory of its own
 * (under node_modules, so the plugin's imports resolve) rather than dist/, which other runs may be using, and gets
 * the path of its main.js.
 */
export function buildPlugin(outDir: string): string {
  const main = `${outDir}/plugin/main.js`;
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--outDir', outDir], { encoding: 'utf8' });
  if (!existsSync(main)) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  return main;
}

export interface PluginProcess {
  child: ChildProcess;
  /** every log line so far, parsed */
  logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** the Talkdesk port, once it listens (LISTEN_PORT 0: the OS picks it) */
  port: Promise<number>;
  /** the metrics port, once it listens (METRICS_PORT 0: the OS picks it) */
  metricsPort: Promise<number>;
}

const children: ChildProcess[] = [];

/** SIGKILL every plugin this file started that still runs (afterEach/afterAll). */
export function killPlugins(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * Starts `main` with only PATH from our environment, every port picked by the OS, plus `env` (the RTP range, the
 * backend). `nodeArgs` go to node itself: --cpu-prof, which NODE_OPTIONS refuses.
 */
export function spawnPlugin(main: string, env: Record<string, string>, nodeArgs: string[] = []): PluginProcess {
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      PATH: process.env.PATH,
      LISTEN_PORT: '0',
      SIP_PORT: '0',
      METRICS_PORT: '0',
      MARK_TIMEOUT_MS: '500',
      CLOSE_WAIT_MS: '500',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const lineListeners: Array<(line: Record<string, unknown>) => void> = [];
  const listening = (msg: string): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const onLine = (line: Record<string, unknown>): void => {
        if (line.msg === msg) resolve(line.port as number);
      };
      lineListeners.push(onLine);
      void exited.then(({ code }) => reject(new Error(`plugin exited (${code}) before "${msg}":\n${stderr}`)));
    });
  const port = listening('talkdesk gateway listening');
  const metricsPort = listening('metrics listening: GET /metrics, /health, /ready');
  // a caller that awaits only one of them must not see the other's rejection as unhandled
  port.catch(() => undefined);
  metricsPort.catch(() => undefined);
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    logs.push(line);
    for (const listener of lineListeners) listener(line);
  });
  return { child, logs, exited, port, metricsPort };
}
