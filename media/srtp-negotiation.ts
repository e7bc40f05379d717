import { chooseCrypto, formatCrypto, newMasterKey, OFFER_TAG, type SrtpMasterKey } from './sdes.js';
import type { RemoteMedia, SdpOffer } from './sdp.js';

/** `PluginConfig.rtp.srtp`, restated here because media/ imports nothing from plugin/ or config/. */
export type SrtpMode = 'off' | 'optional' | 'required';

export type SrtpVerdict =
  /** `remote` carries `srtp` keys, or none for plain RTP; `plainBecause` says why an offered SRTP was not taken up. */
  | { ok: true; remote: RemoteMedia; plainBecause?: string }
  | { ok: false; error: string };

/**
 * One call's SDES-SRTP decisions, from the offer to the last re-INVITE:
 *
 * | mode       | offer                   | answer with a usable a=crypto | answer without one                        |
 * |------------|-------------------------|-------------------------------|-------------------------------------------|
 * | 'off'      | RTP/AVP, no a=crypto    | plain RTP (crypto ignored)    | plain; RTP/SAVP is refused                |
 * | 'optional' | RTP/AVP + a=crypto      | SRTP                          | plain (plainBecause); RTP/SAVP is refused |
 * | 'required' | RTP/SAVP + a=crypto     | SRTP                          | refused                                   |
 *
 * Once SRTP is on, a re-INVITE without a usable a=crypto is refused rather than followed down to plain RTP: the
 * call keeps its media (and keys) as they were. A re-INVITE with a new key re-keys what we receive (RFC 4568
 * §7.1.4); our own key never changes, since the backend answers re-INVITEs with our original SDP.
 */
export class SrtpNegotiation {
  /** For buildOffer(); undefined when SRTP is off. */
  readonly offer: SdpOffer['srtp'];
  private readonly ourKey: SrtpMasterKey | undefined;
  private active = false;

  constructor(readonly mode: SrtpMode) {
    if (mode === 'off') return;
    this.ourKey = newMasterKey();
    this.offer = { mode, crypto: formatCrypto(this.ourKey, OFFER_TAG) };
  }

  /** SRTP is on for the current media. */
  get secure(): boolean {
    return this.active;
  }

  /** The 2xx answer to our INVITE: it must accept the tag we offered (RFC 4568 §5.1.2). */
  answer(remote: RemoteMedia): SrtpVerdict {
    return this.decide(remote, OFFER_TAG);
  }

  /**
   * A bot's re-INVITE offer (or the answer in the ACK of an offerless one). Any tag will do: the backend answers
   * with our original SDP, so our key and tag stay as first offered.
   */
  reoffer(remote: RemoteMedia): SrtpVerdict {
    return this.decide(remote, undefined);
  }

  private decide(remote: RemoteMedia, tag: number | undefined): SrtpVerdict {
    const { crypto, srtp: _ignored, ...media } = remote;
    if (this.ourKey === undefined) {
      if (remote.savp) return fail('the bot answered RTP/SAVP, but SRTP is off (rtp.srtp = "off")');
      return { ok: true, remote: media };
    }
    const chosen = chooseCrypto(crypto ?? [], tag);
    if (chosen.ok) {
      this.active = true;
      return { ok: true, remote: { ...media, srtp: { ourKey: this.ourKey, theirKey: chosen.value.key } } };
    }
    const why = `no usable SRTP key from the bot (${chosen.error})`;
    if (this.active) return fail(`${why}; staying on SRTP rather than falling back to plain RTP`);
    if (this.mode === 'required') return fail(`${why}, and rtp.srtp is "required"`);
    if (remote.savp) return fail(`the bot answered RTP/SAVP with ${why}`);
    return { ok: true, remote: media, plainBecause: why };
  }
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
