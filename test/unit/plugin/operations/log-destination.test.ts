import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { logDestination } from '../../../../plugin/operations/log-destination.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

/** A FIFO with a reader that reads nothing until told: stdout piped to a log shipper that has fallen behind. */
function stalledPipe(): { path: string; drain: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'log-dest-'));
  const path = join(dir, 'stdout');
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  cleanup.push(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const drain = (): string => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      try {
        const n = readSync(fd, buf);
        if (n <= 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      } catch {
        break; // EAGAIN: nothing more buffered now
      }
    }
    return Buffer.concat(chunks).toString();
  };
  return { path, drain };
}

describe('logDestination', () => {
  it("never waits for stdout's reader: while it reads nothing, logging returns, and past the bound lines are dropped and counted", async () => {
    const pipe = stalledPipe();
    const dest = logDestination(pipe.path, 256 * 1024);
    const log = pino({ base: undefined }, dest.stream);
    const padding = 'x'.repeat(400);
    const lines = 4000; // ~1.7 MB: the FIFO (64 KB) and the 256 KB buffer hold a fraction of it
    // with pino's default (a blocking write per line) this loop never returns: nobody reads the FIFO yet
    for (let i = 0; i < lines; i++) log.info({ i, padding }, 'call ended');
    expect(dest.droppedLines()).toBeGreaterThan(0);

    // the reader catches up: every line not dropped arrives, whole and in order
    let text = '';
    for (let tries = 0; tries < 200; tries++) {
      text += pipe.drain();
      const got = text.split('\n').filter(Boolean).length;
      if (got + dest.droppedLines() >= lines) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const got = text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i);
    expect(got.length + dest.droppedLines()).toBe(lines);
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(got[0]).toBe(0);
    dest.stream.end();
  });
});
