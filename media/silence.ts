/**
 * G.711 μ-law (ITU-T G.711 Table 2a) decoded to the magnitude of its 16-bit linear sample, built once: deciding
 * whether a frame is silent then costs one table read per byte, and only when the playout buffer asks.
 */
const MAGNITUDE = (() => {
  const table = new Uint16Array(256);
  for (let u = 0; u < 256; u++) {
    const v = ~u & 0xff;
    const exponent = (v >> 4) & 0x07;
    const mantissa = v & 0x0f;
    table[u] = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  }
  return table;
})();

/**
 * Mean magnitude, of full scale 32767, at or below which a frame counts as silence: about −54 dBov. Measured on
 * espeak-ng speech (test/support/audio.ts): its pauses decode to a mean of 1–3, the fades into and out of words to
 * 10–80, every voiced frame to 120 and more; a quiet line's background noise is −60 dBov and below. Only frames
 * this quiet are ever stretched or shortened to move the caller's delay, so the bot's ASR loses no sound it could use.
 */
export const SILENCE_MEAN_MAGNITUDE = 64;

/** Whether `bytes` of μ-law from `offset` (default a 20 ms frame of 160) are silence in the sense above. */
export function isSilentFrame(frame: Uint8Array, offset = 0, bytes = 160): boolean {
  const limit = SILENCE_MEAN_MAGNITUDE * bytes;
  return magnitudeSum(frame, offset, offset + bytes, limit) <= limit;
}

/**
 * The summed magnitude of `audio[from, to)`, or a value above `limit` as soon as it passes it (speech is recognised
 * within a few bytes). For audio split in two, e.g. across a ring's wrap: sum the second part up to `limit` − first.
 */
export function magnitudeSum(audio: Uint8Array, from: number, to: number, limit: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) {
    sum += MAGNITUDE[audio[i]!]!;
    if (sum > limit) return sum;
  }
  return sum;
}
