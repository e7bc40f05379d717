import { LINEAR_TO_ULAW } from '../../../media/mix.js';

/**
 * WAV files for `npm run probe`: the caller's prompt in, the bot's audio out. Only what a call carries: 8 kHz mono,
 * μ-law (format 7) as is, or 16-bit PCM (format 1) coded to μ-law with the gateway's own G.711 table. Anything else
 * is refused with what it is and how to convert it, never resampled here.
 */
export type WavResult = { ok: true; ulaw: Buffer } | { ok: false; error: string };

const FORMAT_PCM = 1;
const FORMAT_ULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;
const CONVERT = 'convert it with: sox in.wav -r 8000 -c 1 -e u-law out.wav';

/** The μ-law samples of an 8 kHz mono WAV (μ-law or 16-bit PCM). Never throws. */
export function readWav(data: Buffer): WavResult {
  if (data.length < 12 || data.toString('ascii', 0, 4) !== 'RIFF' || data.toString('ascii', 8, 12) !== 'WAVE') {
    return fail('not a WAV file (no RIFF/WAVE header)');
  }
  let format: { code: number; channels: number; rate: number; bits: number } | undefined;
  for (let at = 12; at + 8 <= data.length; ) {
    const id = data.toString('ascii', at, at + 4);
    const size = data.readUInt32LE(at + 4);
    const body = data.subarray(at + 8, Math.min(data.length, at + 8 + size));
    if (id === 'fmt ') {
      if (body.length < 16) return fail('its fmt chunk is truncated');
      let code = body.readUInt16LE(0);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID
      if (code === FORMAT_EXTENSIBLE && body.length >= 26) code = body.readUInt16LE(24);
      format = { code, channels: body.readUInt16LE(2), rate: body.readUInt32LE(4), bits: body.readUInt16LE(14) };
    } else if (id === 'data') {
      if (format === undefined) return fail('its data chunk comes before any fmt chunk');
      const { code, channels, rate, bits } = format;
      if (channels !== 1 || rate !== 8000) return fail(`it is ${channels} channel(s) at ${rate} Hz, not 8000 Hz mono; ${CONVERT}`);
      if (code === FORMAT_ULAW && bits === 8) return { ok: true, ulaw: Buffer.from(body) };
      if (code === FORMAT_PCM && bits === 16) return { ok: true, ulaw: pcm16ToUlaw(body) };
      return fail(`its samples are ${bits}-bit format ${code}, not μ-law (7) or 16-bit PCM (1); ${CONVERT}`);
    }
    at += 8 + size + (size % 2);
  }
  return fail('it has no data chunk');
}

/** A WAV file of μ-law samples at 8 kHz mono, as every player reads it: fmt (18 bytes), fact, data. */
export function ulawWav(ulaw: Buffer): Buffer {
  const header = Buffer.alloc(58);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(50 + ulaw.length + (ulaw.length % 2), 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(18, 16);
  header.writeUInt16LE(FORMAT_ULAW, 20);
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28); // bytes a second
  header.writeUInt16LE(1, 32); // block align
  header.writeUInt16LE(8, 34); // bits a sample
  header.writeUInt16LE(0, 36); // no extension
  header.write('fact', 38, 'ascii');
  header.writeUInt32LE(4, 42);
  header.writeUInt32LE(ulaw.length, 46);
  header.write('data', 50, 'ascii');
  header.writeUInt32LE(ulaw.length, 54);
  return Buffer.concat(ulaw.length % 2 === 0 ? [header, ulaw] : [header, ulaw, Buffer.alloc(1)]);
}

function pcm16ToUlaw(pcm: Buffer): Buffer {
  const out = Buffer.allocUnsafe(pcm.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = LINEAR_TO_ULAW[pcm.readInt16LE(2 * i) + 32768]!;
  return out;
}

function fail(why: string): { ok: false; error: string } {
  return { ok: false, error: `not usable as the caller's audio: ${why}` };
}
