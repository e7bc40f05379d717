import { describe, expect, it } from 'vitest';
import { LINEAR_TO_ULAW, ULAW_TO_LINEAR } from '../../../../../media/mix.js';
import { readWav, ulawWav } from '../../../../../plugin/operations/probe/wav.js';

/** A canonical 44-byte-header WAV, as sox and most tools write it. */
function wav(opts: { format: number; channels: number; rate: number; bits: number }, data: Buffer): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(opts.format, 20);
  h.writeUInt16LE(opts.channels, 22);
  h.writeUInt32LE(opts.rate, 24);
  h.writeUInt32LE((opts.rate * opts.channels * opts.bits) / 8, 28);
  h.writeUInt16LE((opts.channels * opts.bits) / 8, 32);
  h.writeUInt16LE(opts.bits, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

describe('probe WAV files', () => {
  const ulaw = Buffer.from(Array.from({ length: 321 }, (_, i) => (i * 37) & 0xff));

  it('writes μ-law WAVs it reads back byte for byte, odd lengths padded as RIFF wants', () => {
    const file = ulawWav(ulaw);
    expect(file.length % 2).toBe(0);
    expect(file.readUInt32LE(4)).toBe(file.length - 8);
    expect(file.readUInt16LE(20)).toBe(7);
    expect(readWav(file)).toEqual({ ok: true, ulaw });
  });

  it('codes 16-bit PCM to μ-law with the gateway’s G.711 table', () => {
    const pcm = Buffer.alloc(ulaw.length * 2);
    ulaw.forEach((code, i) => pcm.writeInt16LE(ULAW_TO_LINEAR[code]!, 2 * i));
    const read = readWav(wav({ format: 1, channels: 1, rate: 8000, bits: 16 }, pcm));
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    // every μ-law code survives decode → encode, except 0x7f, which shares linear 0 with 0xff
    expect([...read.ulaw].map((c, i) => c === ulaw[i] || (ulaw[i] === 0x7f && c === 0xff))).not.toContain(false);
    expect(read.ulaw[0]).toBe(LINEAR_TO_ULAW[ULAW_TO_LINEAR[ulaw[0]!]! + 32768]);
  });

  it.each([
    ['not a WAV', Buffer.from('ID3 an mp3'), /no RIFF\/WAVE header/],
    ['stereo', wav({ format: 1, channels: 2, rate: 8000, bits: 16 }, Buffer.alloc(8)), /it is 2 channel\(s\) at 8000 Hz, not 8000 Hz mono; convert it with: sox/],
    ['16 kHz', wav({ format: 1, channels: 1, rate: 16000, bits: 16 }, Buffer.alloc(8)), /at 16000 Hz/],
    ['8-bit PCM', wav({ format: 1, channels: 1, rate: 8000, bits: 8 }, Buffer.alloc(8)), /its samples are 8-bit format 1, not μ-law \(7\) or 16-bit PCM \(1\)/],
    ['A-law', wav({ format: 6, channels: 1, rate: 8000, bits: 8 }, Buffer.alloc(8)), /8-bit format 6/],
    ['a truncated header', Buffer.from('RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0', 'latin1'), /fmt chunk is truncated/],
  ])('refuses %s with what it is and how to convert it, never throwing', (_name, data, why) => {
    const read = readWav(data);
    expect(read.ok).toBe(false);
    if (!read.ok) expect(read.error).toMatch(why);
  });
});
