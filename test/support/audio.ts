import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTool } from './tools.js';

const run = promisify(execFile);

/** 20 ms of 8 kHz μ-law: the frame size of both RTP (ptime 20) and Talkdesk media. */
export const FRAME_BYTES = 160;
/** μ-law encoding of linear 0, used to pad speech to whole frames. */
const ULAW_SILENCE = 0xff;

const CACHE_DIR = join(tmpdir(), 'talkdesk-ccai-audio');
const speechCache = new Map<string, Promise<Buffer>>();

/**
 * Spoken `text` as raw 8 kHz μ-law, padded with silence to whole 160-byte frames (never trimmed, so no speech is
 * lost). Each espeak-ng + sox run forks two processes (~70 ms), so results are cached per text in memory and on disk
 * (os.tmpdir()/talkdesk-ccai-audio), which also keeps the bytes identical across test files.
 */
export function speechUlaw(text: string): Promise<Buffer> {
  let cached = speechCache.get(text);
  if (cached === undefined) {
    cached = synthesize(text);
    // a failed synthesis must not poison later calls
    cached.catch(() => speechCache.delete(text));
    speechCache.set(text, cached);
  }
  return cached;
}

/**
 * What a caller says to a bot, with the pauses a caller makes: espeak-ng stops 100–150 ms at a comma and about 300 ms
 * at a full stop, so of its 16 s about a quarter is silence (frames media/silence.ts calls silent). A playout
 * buffer that takes delay back by shortening silence has something to shorten here, and a test can check that no
 * word was cut.
 */
export const CALLER_SPEECH_WITH_PAUSES =
  'Hello, I am calling about my order. It was supposed to arrive on Monday, but it never came. ' +
  'The tracking number is four, seven, two, nine. Could you check where it is, please? ' +
  'I would also like to change my delivery address. Thank you, that would be great.';

/** CALLER_SPEECH_WITH_PAUSES spoken, as speechUlaw() makes it. */
export function speechWithPauses(): Promise<Buffer> {
  return speechUlaw(CALLER_SPEECH_WITH_PAUSES);
}

async function synthesize(text: string): Promise<Buffer> {
  const key = createHash('sha256').update(text).digest('hex').slice(0, 32);
  const cachedFile = join(CACHE_DIR, `${key}.ul`);
  try {
    return await readFile(cachedFile);
  } catch {
    // not cached yet
  }
  await mkdir(CACHE_DIR, { recursive: true });
  const work = await mkdtemp(join(CACHE_DIR, 'work-'));
  try {
    const wav = join(work, 'speech.wav');
    const raw = join(work, 'speech.ul');
    await run(requireTool('espeak-ng'), ['-w', wav, text]);
    await run(requireTool('sox'), [wav, '-t', 'ul', '-r', '8000', '-c', '1', raw]);
    const ulaw = padToFrames(await readFile(raw));
    // write-then-rename so a concurrent reader never sees a half-written file
    const staged = join(work, 'done.ul');
    await writeFile(staged, ulaw);
    await rename(staged, cachedFile);
    return ulaw;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function padToFrames(ulaw: Buffer): Buffer {
  const short = (FRAME_BYTES - (ulaw.length % FRAME_BYTES)) % FRAME_BYTES;
  return short === 0 ? ulaw : Buffer.concat([ulaw, Buffer.alloc(short, ULAW_SILENCE)]);
}

/**
 * A sine of `hz` lasting `ms` (8 samples per ms) as μ-law: cheap, deterministic audio whose frequency a test can
 * detect after it crossed the bridge. `amplitude` is a fraction of full scale.
 */
export function toneUlaw(hz: number, ms: number, amplitude = 0.5): Buffer {
  const out = Buffer.alloc(Math.round(ms * 8));
  for (let i = 0; i < out.length; i++) {
    out[i] = linearToUlaw(Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * hz * i) / 8000)));
  }
  return out;
}

/** G.711 μ-law encoder (the classic Sun reference algorithm: bias 0x84, clip 32635, bits inverted). */
function linearToUlaw(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  const magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** `ulaw` cut into 160-byte (20 ms) frames. Throws when it is not a whole number of frames. */
export function frames(ulaw: Buffer): Buffer[] {
  if (ulaw.length % FRAME_BYTES !== 0) {
    throw new RangeError(`${ulaw.length} bytes of μ-law is not a whole number of ${FRAME_BYTES}-byte frames`);
  }
  const out: Buffer[] = [];
  for (let at = 0; at < ulaw.length; at += FRAME_BYTES) out.push(ulaw.subarray(at, at + FRAME_BYTES));
  return out;
}

export interface PcapOptions {
  payloadType?: number;
  ssrc?: number;
  seqStart?: number;
}

/** UDP ports recorded in the capture. sipp replays relative to them (sip-notes §3.1), so only their offset matters. */
const PCAP_SRC_PORT = 5000;
const PCAP_DST_PORT = 6000;
const ETH_BYTES = 14;
const IPV4_BYTES = 20;
const UDP_BYTES = 8;
const RTP_BYTES = 12;

/**
 * A libpcap capture of `ulaw` as RTP, one packet per 160-byte frame, 20 ms apart, marker on the first, for sipp's
 * `play_pcap_audio`. sipp sends the RTP headers exactly as recorded, so SSRC, sequence numbers and timestamps are
 * what a test will see on the wire (sip-notes §2.5).
 */
export function pcmuPcap(ulaw: Buffer, opts: PcapOptions = {}): Buffer {
  const { payloadType = 0, ssrc = 0x5eed1234, seqStart = 1000 } = opts;
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0); // microsecond timestamps, little-endian file
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(65535, 16); // snaplen
  global.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET: sipp rejects raw-IP captures
  const records = frames(ulaw).map((payload, n) => {
    const packetBytes = ETH_BYTES + IPV4_BYTES + UDP_BYTES + RTP_BYTES + payload.length;
    const rec = Buffer.alloc(16 + packetBytes);
    const usec = n * 20_000;
    rec.writeUInt32LE(Math.floor(usec / 1e6), 0);
    rec.writeUInt32LE(usec % 1e6, 4);
    rec.writeUInt32LE(packetBytes, 8);
    rec.writeUInt32LE(packetBytes, 12);

    const eth = 16;
    rec.writeUInt16BE(0x0800, eth + 12); // IPv4; the MAC addresses stay zero

    const ip = eth + ETH_BYTES;
    rec[ip] = 0x45;
    rec.writeUInt16BE(IPV4_BYTES + UDP_BYTES + RTP_BYTES + payload.length, ip + 2);
    rec.writeUInt16BE(n & 0xffff, ip + 4);
    rec[ip + 8] = 64;
    rec[ip + 9] = 17;
    rec.writeUInt32BE(0x7f000001, ip + 12);
    rec.writeUInt32BE(0x7f000001, ip + 16);
    rec.writeUInt16BE(ipv4Checksum(rec.subarray(ip, ip + IPV4_BYTES)), ip + 10);

    const udp = ip + IPV4_BYTES;
    rec.writeUInt16BE(PCAP_SRC_PORT, udp);
    rec.writeUInt16BE(PCAP_DST_PORT, udp + 2);
    rec.writeUInt16BE(UDP_BYTES + RTP_BYTES + payload.length, udp + 4); // checksum 0 = none (RFC 768)

    const rtp = udp + UDP_BYTES;
    rec[rtp] = 0x80;
    rec[rtp + 1] = (n === 0 ? 0x80 : 0) | (payloadType & 0x7f);
    rec.writeUInt16BE((seqStart + n) & 0xffff, rtp + 2);
    rec.writeUInt32BE((n * FRAME_BYTES) >>> 0, rtp + 4);
    rec.writeUInt32BE(ssrc >>> 0, rtp + 8);
    payload.copy(rec, rtp + RTP_BYTES);
    return rec;
  });
  return Buffer.concat([global, ...records]);
}

export async function writePcmuPcap(ulaw: Buffer, path: string, opts?: PcapOptions): Promise<void> {
  await writeFile(path, pcmuPcap(ulaw, opts));
}

/** RFC 791 header checksum: one's complement of the one's-complement sum of the 16-bit words (checksum field 0). */
function ipv4Checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
