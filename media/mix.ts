/**
 * Two μ-law tracks mixed into one: the agent-assist stream in `AGENT_ASSIST_CALLS=one` mode, where the caller's and
 * the agent's audio share a single call to the bot.
 *
 * This is the only place the plugin transcodes. Everywhere else audio is μ-law end to end and copied byte for
 * byte, but μ-law codes are logarithmic: adding two of them is not adding two sounds. Mixing has to happen on
 * linear samples, so each code goes to 16-bit linear, the two are summed with clipping, and the sum goes back to
 * μ-law, all through lookup tables (G.711 §3, the common 0x84-biased form): two reads, an add and a clamp per sample.
 */

/** G.711 μ-law code → 16-bit linear sample (±32124). */
export const ULAW_TO_LINEAR: Int16Array = (() => {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    const u = ~code & 0xff;
    const exponent = (u >> 4) & 0x07;
    const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
    table[code] = u & 0x80 ? -magnitude : magnitude;
  }
  return table;
})();

const BIAS = 0x84;
const CLIP = 32635;

/** 16-bit linear sample (index: sample + 32768) → μ-law code. 64 KB, built once per process. */
export const LINEAR_TO_ULAW: Uint8Array = (() => {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) {
    let sample = i - 32768;
    const sign = sample < 0 ? 0x80 : 0;
    if (sign) sample = -sample;
    if (sample > CLIP) sample = CLIP;
    sample += BIAS;
    let exponent = 7;
    for (let mask = 0x4000; (sample & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (sample >> (exponent + 3)) & 0x0f;
    table[i] = ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  return table;
})();

/** out[i] = a[i] + b[i] as sound: to linear, summed, clipped to 16 bits, back to μ-law. */
export function mixMulaw(a: Uint8Array, b: Uint8Array, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) {
    let sum = ULAW_TO_LINEAR[a[i]!]! + ULAW_TO_LINEAR[b[i]!]!;
    if (sum > 32767) sum = 32767;
    else if (sum < -32768) sum = -32768;
    out[i] = LINEAR_TO_ULAW[sum + 32768]!;
  }
}

/**
 * Pairs up two tracks that arrive as separate frames (Talkdesk sends an inbound and an outbound `media` frame per
 * chunk, of any size) and emits their mix as soon as both have audio for the same stretch. A track that falls
 * silent (the agent not connected yet, a lost frame) must not hold the other back: once one is more than
 * `maxSkewBytes` ahead, its oldest audio goes out alone, as if mixed with silence.
 */
export class TwoTrackMixer {
  private readonly pending: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];

  constructor(
    private readonly emit: (mulaw: Buffer) => void,
    /** 60 ms of 8 kHz μ-law by default: about one frame of jitter between the tracks, plus one late frame */
    private readonly maxSkewBytes = 480,
  ) {}

  push(track: 0 | 1, mulaw: Uint8Array): void {
    if (mulaw.length === 0) return;
    this.pending[track] = Buffer.concat([this.pending[track], mulaw]);
    const [a, b] = this.pending;
    const both = Math.min(a.length, b.length);
    if (both > 0) {
      const mixed = Buffer.allocUnsafe(both);
      mixMulaw(a, b, mixed);
      this.pending[0] = a.subarray(both);
      this.pending[1] = b.subarray(both);
      this.emit(mixed);
    }
    for (const t of [0, 1] as const) {
      const excess = this.pending[t].length - this.maxSkewBytes;
      if (excess > 0) {
        this.emit(Buffer.from(this.pending[t].subarray(0, excess)));
        this.pending[t] = this.pending[t].subarray(excess);
      }
    }
  }
}
