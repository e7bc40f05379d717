/**
 * The plugin's memory as V8 sees it, after a full garbage collection, without a line of bench code in the plugin.
 *
 * RSS alone cannot tell a leak from a heap that V8 lets grow between major collections (with GBs free it does, and
 * RSS saws up and down by 100 MB). So the plugin is started with `--inspect-port=0`, which costs nothing until
 * SIGUSR1 opens the inspector; the probe then asks it over the DevTools protocol to collect all garbage and reads
 * `process.memoryUsage()`: what is still held after that is what the calls left behind.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import WebSocket from 'ws';

export interface MemoryAfterGc {
  /** how long the collection took, seen from here: the plugin stood still that long */
  gcMs: number;
  rssMB: number;
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  arrayBuffersMB: number;
}

const MB = 2 ** 20;

export class HeapProbe {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private onChunk: ((chunk: string) => void) | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: { chunk: string } };
      if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') this.onChunk?.(msg.params!.chunk);
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
    });
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('inspector closed'));
      this.pending.clear();
    });
  }

  /** Opens the inspector of a process started with `--inspect-port=0` (SIGUSR1) and connects to it. */
  static async attach(child: ChildProcess, timeoutMs = 5000): Promise<HeapProbe> {
    const url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => {
        child.stderr!.off('data', onData);
        reject(new Error(`the plugin's inspector did not open within ${timeoutMs} ms (was it started with --inspect-port=0?)`));
      }, timeoutMs);
      const onData = (chunk: Buffer): void => {
        seen += chunk.toString();
        const m = /Debugger listening on (ws:\/\/\S+)/.exec(seen);
        if (!m) return;
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        resolve(m[1]!);
      };
      child.stderr!.on('data', onData);
      child.kill('SIGUSR1');
    });
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new HeapProbe(ws);
  }

  private send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Collects all garbage (V8 repeats its full collection until nothing more is freed), then reads memory. */
  async afterGc(): Promise<MemoryAfterGc> {
    const t0 = performance.now();
    await this.send('HeapProfiler.collectGarbage');
    const gcMs = Math.round(performance.now() - t0);
    const r = await this.send<{ result: { value: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const m = JSON.parse(r.result.value) as { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
    const mb = (b: number): number => Math.round((b / MB) * 100) / 100;
    return { gcMs, rssMB: mb(m.rss), heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal), externalMB: mb(m.external), arrayBuffersMB: mb(m.arrayBuffers) };
  }

  /** Writes a heap snapshot (loadable in Chrome DevTools' Memory tab: compare two to see what grew). */
  async snapshot(path: string): Promise<void> {
    const out = createWriteStream(path);
    this.onChunk = (chunk) => out.write(chunk);
    try {
      await this.send('HeapProfiler.enable');
      await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    } finally {
      this.onChunk = undefined;
      await new Promise<void>((resolve) => out.end(resolve));
    }
  }

  /**
   * Starts V8's sampling heap profiler keeping the samples of objects already collected (by a scavenge or a full
   * GC), so the profile says what was allocated, garbage included, not only what is still alive.
   */
  async startAllocationSampling(intervalBytes = 8192): Promise<void> {
    await this.send('HeapProfiler.enable');
    await this.send('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  /** Stops the sampling: the estimated bytes allocated, in all and by allocating function (self), largest first. */
  async stopAllocationSampling(): Promise<{ totalBytes: number; sites: Array<{ fn: string; bytes: number }> }> {
    interface SamplingNode {
      callFrame: { functionName: string; url: string; lineNumber: number };
      selfSize: number;
      children: SamplingNode[];
    }
    const { profile } = await this.send<{ profile: { head: SamplingNode } }>('HeapProfiler.stopSampling');
    const bySite = new Map<string, number>();
    let totalBytes = 0;
    const walk = (node: SamplingNode): void => {
      if (node.selfSize > 0) {
        const cf = node.callFrame;
        const fn = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules|bench-build|dist)\//, '$1/')}:${cf.lineNumber + 1}`;
        bySite.set(fn, (bySite.get(fn) ?? 0) + node.selfSize);
        totalBytes += node.selfSize;
      }
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
    const sites = [...bySite.entries()].sort((a, b) => b[1] - a[1]).map(([fn, bytes]) => ({ fn, bytes }));
    return { totalBytes, sites };
  }

  close(): void {
    this.ws.close();
  }
}
