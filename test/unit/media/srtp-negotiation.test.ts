import { describe, expect, it } from 'vitest';
import { formatCrypto, newMasterKey, parseCrypto, sameMasterKey } from '../../../media/sdes.js';
import { parseAnswer, type RemoteMedia } from '../../../media/sdp.js';
import { SrtpNegotiation } from '../../../media/srtp-negotiation.js';

const botKey = newMasterKey();
const BOT_CRYPTO = formatCrypto(botKey, 1);

function media(extra: Partial<RemoteMedia> = {}): RemoteMedia {
  return { address: '10.0.0.9', port: 5004, audioPayloadType: 0, direction: 'sendrecv', ...extra };
}

describe('SrtpNegotiation', () => {
  it("'off' offers nothing, ignores crypto in the answer, and refuses an RTP/SAVP answer", () => {
    const n = new SrtpNegotiation('off');
    expect(n.offer).toBeUndefined();
    expect(n.answer(media({ crypto: [BOT_CRYPTO] }))).toEqual({ ok: true, remote: media() });
    expect(n.answer(media({ savp: true, crypto: [BOT_CRYPTO] }))).toEqual({
      ok: false,
      error: 'the bot answered RTP/SAVP, but SRTP is off (rtp.srtp = "off")',
    });
  });

  it.each(['optional', 'required'] as const)('%s: offers a fresh key and takes the answer\'s key up', (mode) => {
    const n = new SrtpNegotiation(mode);
    expect(n.offer?.mode).toBe(mode);
    const ours = parseCrypto(n.offer!.crypto);
    expect(ours.ok && ours.value.tag).toBe(1);
    expect(new SrtpNegotiation(mode).offer!.crypto).not.toBe(n.offer!.crypto);

    const verdict = n.answer(media({ savp: mode === 'required' ? true : undefined, crypto: [BOT_CRYPTO] }));
    expect(verdict.ok).toBe(true);
    if (!verdict.ok) return;
    expect(verdict.plainBecause).toBeUndefined();
    expect('crypto' in verdict.remote).toBe(false);
    expect(sameMasterKey(verdict.remote.srtp!.theirKey, botKey)).toBe(true);
    expect(ours.ok && sameMasterKey(verdict.remote.srtp!.ourKey, ours.value.key)).toBe(true);
    expect(n.secure).toBe(true);
  });

  it("'required' refuses an answer without a usable key, naming why", () => {
    const n = new SrtpNegotiation('required');
    expect(n.answer(media())).toEqual({ ok: false, error: 'no usable SRTP key from the bot (no a=crypto attribute), and rtp.srtp is "required"' });
    const v = n.answer(media({ savp: true, crypto: [`1 AES_CM_128_HMAC_SHA1_32 inline:${'A'.repeat(40)}`] }));
    expect(!v.ok && v.error).toMatch(/AES_CM_128_HMAC_SHA1_32 \(tag 1\) is not supported.*"required"/);
    const wrongTag = n.answer(media({ savp: true, crypto: [formatCrypto(botKey, 2)] }));
    expect(!wrongTag.ok && wrongTag.error).toMatch(/tag 2 was not offered/);
  });

  it("'optional' falls back to plain RTP over RTP/AVP, saying why, but refuses RTP/SAVP without a key", () => {
    const n = new SrtpNegotiation('optional');
    expect(n.answer(media())).toEqual({ ok: true, remote: media(), plainBecause: 'no usable SRTP key from the bot (no a=crypto attribute)' });
    expect(n.secure).toBe(false);
    const savp = n.answer(media({ savp: true }));
    expect(!savp.ok && savp.error).toMatch(/answered RTP\/SAVP with no usable SRTP key/);
  });

  it('a re-INVITE may re-key with any tag, but never takes SRTP down to plain RTP', () => {
    const n = new SrtpNegotiation('optional');
    expect(n.answer(media({ crypto: [BOT_CRYPTO] })).ok).toBe(true);
    const newKey = newMasterKey();
    const rekey = n.reoffer(media({ port: 6000, crypto: [`3 AES_CM_128_HMAC_SHA1_32 inline:${'A'.repeat(40)}`, formatCrypto(newKey, 4)] }));
    expect(rekey.ok && sameMasterKey(rekey.remote.srtp!.theirKey, newKey)).toBe(true);
    const downgrade = n.reoffer(media({ port: 6002 }));
    expect(!downgrade.ok && downgrade.error).toMatch(/staying on SRTP rather than falling back to plain RTP/);
  });

  it('works on what parseAnswer returns', () => {
    const n = new SrtpNegotiation('required');
    const sdp = ['v=0', 'o=- 1 1 IN IP4 10.0.0.9', 's=-', 'c=IN IP4 10.0.0.9', 't=0 0', 'm=audio 5004 RTP/SAVP 0', `a=crypto:${BOT_CRYPTO}|2^31`, ''].join('\r\n');
    const parsed = parseAnswer(sdp);
    expect(parsed.ok).toBe(true);
    const v = parsed.ok ? n.answer(parsed.value) : undefined;
    expect(v?.ok && sameMasterKey(v.remote.srtp!.theirKey, botKey)).toBe(true);
  });
});
