import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSilentFrame } from '../../../media/silence.js';
import { frames, pcmuPcap, speechUlaw, speechWithPauses, toneUlaw, writePcmuPcap } from '../../support/audio.js';

/** G.711 μ-law decoder written independently of the encoder under test (ITU-T G.711 table form). */
function ulawToLinear(u: number): number {
  const v = ~u & 0xff;
  const exponent = (v >> 4) & 0x07;
  const magnitude = (((v & 0x0f) << 3) + 0x84) << exponent;
  return v & 0x80 ? 0x84 - magnitude : magnitude - 0x84;
}

describe('toneUlaw', () => {
  it('is 8 samples per ms', () => {
    expect(toneUlaw(440, 100).length).toBe(800);
  });

  it('encodes silence, full scale and clipping as G.711 does', () => {
    // 2000 Hz at 8 kHz: samples at 0°, 90°, 180°, 270°
    const tone = toneUlaw(2000, 0.5, 1);
    expect([...tone]).toEqual([0xff, 0x80, 0xff, 0x00]);
  });

  it('decodes back to the sine within one μ-law quantisation step', () => {
    const tone = toneUlaw(1000, 20, 0.5);
    tone.forEach((u, i) => {
      const expected = 0.5 * 32767 * Math.sin((2 * Math.PI * 1000 * i) / 8000);
      // a μ-law step is 1/16 of its segment: the error is at most half of it, plus the bias
      expect(Math.abs(ulawToLinear(u) - expected)).toBeLessThanOrEqual(Math.abs(expected) / 16 + 8);
    });
  });

  it('has the requested frequency', () => {
    const decoded = [...toneUlaw(440, 1000)].map(ulawToLinear);
    let crossings = 0;
    for (let i = 1; i < decoded.length; i++) {
      if ((decoded[i - 1] as number) < 0 !== (decoded[i] as number) < 0) crossings++;
    }
    expect(crossings).toBeGreaterThanOrEqual(878);
    expect(crossings).toBeLessThanOrEqual(882);
  });
});

describe('frames', () => {
  it('cuts μ-law into 160-byte frames in order', () => {
    const ulaw = Buffer.from(Array.from({ length: 480 }, (_, i) => i & 0xff));
    const out = frames(ulaw);
    expect(out.map((f) => f.length)).toEqual([160, 160, 160]);
    expect(Buffer.concat(out)).toEqual(ulaw);
  });

  it('refuses a partial frame', () => {
    expect(() => frames(Buffer.alloc(161))).toThrow(RangeError);
  });
});

describe('speechUlaw', () => {
  const text = 'Testing the speech cache.';

  it('is whole frames of non-silent μ-law', async () => {
    const ulaw = await speechUlaw(text);
    expect(ulaw.length % 160).toBe(0);
    expect(ulaw.length).toBeGreaterThan(8000); // more than a second
    expect(ulaw.filter((b) => b !== 0xff && b !== 0x7f).length).toBeGreaterThan(ulaw.length / 2);
  });

  it('is cached on disk with the same bytes', async () => {
    const ulaw = await speechUlaw(text);
    const dir = join(tmpdir(), 'talkdesk-ccai-audio');
    const cached = await Promise.all(
      (await readdir(dir)).filter((f) => f.endsWith('.ul')).map((f) => readFile(join(dir, f))),
    );
    expect(cached.some((c) => c.equals(ulaw))).toBe(true);
  });
});

describe('speechWithPauses', () => {
  it('is 15–20 s of speech with pauses at its commas and full stops that media/silence.ts calls silent', async () => {
    const ulaw = await speechWithPauses();
    const silent = frames(ulaw).map((f) => isSilentFrame(f));
    expect(silent.length * 20).toBeGreaterThanOrEqual(15_000);
    expect(silent.length * 20).toBeLessThanOrEqual(20_000);
    // pauses of 200 ms and more: one per sentence at least (6 sentences; the first and last stand at the ends)
    const pauses: number[] = [];
    let run = 0;
    for (const s of [...silent, false]) {
      if (s) run++;
      else if (run > 0) {
        pauses.push(run);
        run = 0;
      }
    }
    expect(pauses.filter((n) => n >= 10).length).toBeGreaterThanOrEqual(5);
    // mostly speech all the same: a buffer that removes silence is not left with nothing but silence
    const share = silent.filter(Boolean).length / silent.length;
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.4);
  });
});

describe('pcmuPcap', () => {
  const ulaw = toneUlaw(1000, 60); // 3 frames
  const pcap = pcmuPcap(ulaw, { payloadType: 0, ssrc: 0x01020304, seqStart: 65535 });
  const GLOBAL = 24;
  const RECORD = 16 + 14 + 20 + 8 + 12 + 160;

  it('has a libpcap Ethernet header and one record per frame', () => {
    expect(pcap.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect([pcap.readUInt16LE(4), pcap.readUInt16LE(6)]).toEqual([2, 4]);
    expect(pcap.readUInt32LE(20)).toBe(1);
    expect(pcap.length).toBe(GLOBAL + 3 * RECORD);
  });

  it('records RTP over UDP 5000→6000, 20 ms apart, marker on the first packet only', () => {
    for (let n = 0; n < 3; n++) {
      const rec = GLOBAL + n * RECORD;
      const usec = pcap.readUInt32LE(rec) * 1e6 + pcap.readUInt32LE(rec + 4);
      expect(usec).toBe(n * 20_000);
      expect(pcap.readUInt32LE(rec + 8)).toBe(RECORD - 16);
      const ip = rec + 16 + 14;
      expect(pcap.readUInt16BE(rec + 16 + 12)).toBe(0x0800);
      // a valid IPv4 header checksum makes the header sum to 0xffff
      let sum = 0;
      for (let i = 0; i < 20; i += 2) sum += pcap.readUInt16BE(ip + i);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      expect(sum).toBe(0xffff);
      const udp = ip + 20;
      expect([pcap.readUInt16BE(udp), pcap.readUInt16BE(udp + 2), pcap.readUInt16BE(udp + 4)]).toEqual([
        5000,
        6000,
        8 + 12 + 160,
      ]);
      const rtp = udp + 8;
      expect(pcap[rtp]).toBe(0x80);
      expect(pcap[rtp + 1]).toBe(n === 0 ? 0x80 : 0x00);
      expect(pcap.readUInt16BE(rtp + 2)).toBe((65535 + n) & 0xffff); // wraps
      expect(pcap.readUInt32BE(rtp + 4)).toBe(n * 160);
      expect(pcap.readUInt32BE(rtp + 8)).toBe(0x01020304);
      expect(pcap.subarray(rtp + 12, rtp + 12 + 160)).toEqual(ulaw.subarray(n * 160, (n + 1) * 160));
    }
  });

  it('carries the payload type given', () => {
    const pcap101 = pcmuPcap(Buffer.alloc(160), { payloadType: 101 });
    expect(pcap101[GLOBAL + 16 + 14 + 20 + 8 + 1]).toBe(0x80 | 101);
  });

  it('is written to a file unchanged', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pcap-test-'));
    try {
      await writePcmuPcap(ulaw, join(dir, 'x.pcap'), { ssrc: 0x01020304, seqStart: 65535 });
      expect(await readFile(join(dir, 'x.pcap'))).toEqual(pcap);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
