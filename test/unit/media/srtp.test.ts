import { createHmac } from 'node:crypto';
import { SrtpSession } from 'rtp-packet';
import { describe, expect, it } from 'vitest';
import { newMasterKey } from '../../../media/sdes.js';
import { deriveSessionKey, SrtpContext } from '../../../media/srtp.js';
import { GOLDEN_MASTER, GOLDEN_SRTCP, GOLDEN_SRTP, goldenPlain, goldenPlainRtcp } from './srtp-golden.js';

const golden = (seq: number): Buffer => Buffer.from(GOLDEN_SRTP.find(([s]) => s === seq)![1], 'hex');

describe('SrtpContext (RFC 3711, AES_CM_128_HMAC_SHA1_80)', () => {
  it('derives the session keys of RFC 3711 Appendix B.3', () => {
    expect(deriveSessionKey(GOLDEN_MASTER, 0x00, 16).toString('hex')).toBe('c61e7a93744f39ee10734afe3ff7a087');
    expect(deriveSessionKey(GOLDEN_MASTER, 0x02, 14).toString('hex')).toBe('30cbbc08863d8c85d49db34a9ae1');
    expect(deriveSessionKey(GOLDEN_MASTER, 0x01, 20).toString('hex')).toBe('cebe321f6ff7716b6fd4ab49af256a156d38baa4');
  });

  it('protects packets byte for byte as libsrtp does, across a sequence wrap (ROC 0 → 1)', () => {
    const ctx = new SrtpContext(GOLDEN_MASTER);
    for (const [seq, hex] of GOLDEN_SRTP) expect(`${seq}:${ctx.protect(goldenPlain(seq))!.toString('hex')}`).toBe(`${seq}:${hex}`);
  });

  it("unprotects libsrtp's packets, reordered around the wrap, back to the exact plain packets", () => {
    const ctx = new SrtpContext(GOLDEN_MASTER);
    for (const seq of [65534, 0, 65535, 1]) {
      expect(ctx.unprotect(golden(seq))?.toString('hex'), `seq ${seq}`).toBe(goldenPlain(seq).toString('hex'));
    }
  });

  it('refuses a replay, a tampered payload or tag, a wrong key and plain RTP, and none of them moves its state', () => {
    const ctx = new SrtpContext(GOLDEN_MASTER);
    expect(ctx.unprotect(golden(65534))).not.toBeNull();
    expect(ctx.unprotect(golden(65534))).toBeNull(); // replay

    const tampered = golden(65535);
    tampered[100]! ^= 0x01;
    expect(ctx.unprotect(tampered)).toBeNull();
    const badTag = golden(65535);
    badTag[badTag.length - 1]! ^= 0x01;
    expect(ctx.unprotect(badTag)).toBeNull();
    expect(new SrtpContext(newMasterKey()).unprotect(golden(65535))).toBeNull();
    expect(ctx.unprotect(goldenPlain(65535))).toBeNull();
    expect(ctx.unprotect(Buffer.from([0x80, 0, 0]))).toBeNull();

    // the genuine packets still authenticate: nothing above was taken as seen, or moved the ROC
    expect(ctx.unprotect(golden(65535))).not.toBeNull();
    expect(ctx.unprotect(golden(0))).not.toBeNull();
  });

  it('keeps a 128-packet replay window: late packets inside it play once, older ones are refused', () => {
    const key = newMasterKey();
    const tx = new SrtpContext(key);
    const rx = new SrtpContext(key);
    const packets = Array.from({ length: 300 }, (_, i) => tx.protect(goldenPlain((60000 + i) & 0xffff))!);
    expect(rx.unprotect(packets[200]!)).not.toBeNull();
    expect(rx.unprotect(packets[73]!)).not.toBeNull(); // 127 behind
    expect(rx.unprotect(packets[73]!)).toBeNull();
    expect(rx.unprotect(packets[72]!)).toBeNull(); // 128 behind
    expect(rx.unprotect(packets[299]!)).not.toBeNull();
    expect(rx.unprotect(packets[201]!)).not.toBeNull(); // 98 behind the new maximum, never seen
  });

  it('keeps one state per SSRC, as a bot replaying recordings changes SSRC mid-call', () => {
    const key = newMasterKey();
    const tx = new SrtpContext(key);
    const rx = new SrtpContext(key);
    const withSsrc = (seq: number, ssrc: number): Buffer => {
      const p = goldenPlain(seq);
      p.writeUInt32BE(ssrc, 8);
      return p;
    };
    expect(rx.unprotect(tx.protect(withSsrc(40000, 1))!)).not.toBeNull();
    expect(rx.unprotect(tx.protect(withSsrc(10, 2))!)).not.toBeNull();
    expect(rx.unprotect(tx.protect(withSsrc(40001, 1))!)).not.toBeNull();
  });

  // Why media/srtp.ts exists. When this fails, rtp-packet has been fixed and could be used again.
  it('rtp-packet 0.4.2 SrtpSession disagrees with libsrtp once the ROC is 1 (its IV misplaces the ROC)', () => {
    const rp = new SrtpSession(GOLDEN_MASTER.key, GOLDEN_MASTER.salt);
    const out = GOLDEN_SRTP.map(([seq, hex]) => rp.encryptRtp(goldenPlain(seq))!.toString('hex') === hex);
    expect(out).toEqual([true, true, false, false]);
  });
});

describe('SrtpContext: SRTCP (RFC 3711 §3.4)', () => {
  const goldenRtcp = (n: number): Buffer => Buffer.from(GOLDEN_SRTCP[n]!, 'hex');

  it('protects reports byte for byte as libsrtp does, the index counting up with E set', () => {
    const ctx = new SrtpContext(GOLDEN_MASTER);
    const first = ctx.protectRtcp(goldenPlainRtcp(9))!;
    // ours starts at index 0 as §3.4 says; libsrtp's at 1, so the next three are compared
    expect(first.readUInt32BE(52).toString(16)).toBe('80000000');
    for (let n = 0; n < 3; n++) expect(ctx.protectRtcp(goldenPlainRtcp(n))!.toString('hex'), `report ${n}`).toBe(GOLDEN_SRTCP[n]);
  });

  it("unprotects libsrtp's reports, in any order, back to the plain packets; replays, tampering and plain RTCP are refused", () => {
    const ctx = new SrtpContext(GOLDEN_MASTER);
    for (const n of [2, 0, 1]) expect(ctx.unprotectRtcp(goldenRtcp(n))?.toString('hex'), `report ${n}`).toBe(goldenPlainRtcp(n).toString('hex'));
    expect(ctx.unprotectRtcp(goldenRtcp(1))).toBeNull(); // replay
    const fresh = new SrtpContext(GOLDEN_MASTER);
    const tampered = goldenRtcp(0);
    tampered[20]! ^= 1;
    expect(fresh.unprotectRtcp(tampered)).toBeNull();
    expect(fresh.unprotectRtcp(goldenPlainRtcp(0))).toBeNull();
    expect(new SrtpContext(newMasterKey()).unprotectRtcp(goldenRtcp(0))).toBeNull();
    expect(fresh.unprotectRtcp(goldenRtcp(0))).not.toBeNull(); // none of the refusals moved its window
  });

  it('takes an authenticated report sent unencrypted (E = 0), as a peer with UNENCRYPTED_SRTCP sends it', () => {
    const tx = new SrtpContext(GOLDEN_MASTER);
    const sent = tx.protectRtcp(goldenPlainRtcp(0))!;
    // forge nothing: build the E = 0 form with the same keys by hand, the tag over the clear packet and index
    const plain = goldenPlainRtcp(0);
    const clear = Buffer.concat([plain, Buffer.from('00000000', 'hex')]);
    const authKey = deriveSessionKey(GOLDEN_MASTER, 0x04, 20);
    const tag = createHmac('sha1', authKey).update(clear).digest().subarray(0, 10);
    expect(new SrtpContext(GOLDEN_MASTER).unprotectRtcp(Buffer.concat([clear, tag]))?.toString('hex')).toBe(plain.toString('hex'));
    expect(sent.subarray(8, 52).equals(plain.subarray(8))).toBe(false); // while ours is encrypted
  });
});
