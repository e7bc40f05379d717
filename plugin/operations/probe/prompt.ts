import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readWav, type WavResult } from './wav.js';

const run = promisify(execFile);

/**
 * The caller's words for `--say`: espeak-ng speaks them, sox makes them 8 kHz μ-law. Both are Debian packages an
 * operator may not have; then the result says how to get them rather than failing somewhere inside.
 */
export async function spokenPrompt(text: string): Promise<WavResult> {
  for (const tool of ['espeak-ng', 'sox']) {
    try {
      await run(tool, ['--version']);
    } catch {
      return { ok: false, error: `--say needs ${tool}: install espeak-ng and sox (Debian/Ubuntu: apt-get install espeak-ng sox), or give --wav` };
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'probe-say-'));
  try {
    const spoken = join(dir, 'spoken.wav');
    const ulaw = join(dir, 'ulaw.wav');
    await run('espeak-ng', ['-w', spoken, '--', text]);
    await run('sox', [spoken, '-r', '8000', '-c', '1', '-e', 'u-law', ulaw]);
    return readWav(await readFile(ulaw));
  } catch (err) {
    return { ok: false, error: `--say could not make the prompt: ${(err as Error).message}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `--wav`: the file's samples, or why the file cannot be the caller. */
export async function wavPrompt(path: string): Promise<WavResult> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    return { ok: false, error: `--wav ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const wav = readWav(data);
  return wav.ok ? wav : { ok: false, error: `--wav ${path}: ${wav.error}` };
}
