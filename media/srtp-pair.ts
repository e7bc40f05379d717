import { sameMasterKey, type SrtpKeys, type SrtpMasterKey } from './sdes.js';
import { SrtpContext } from './srtp.js';

/**
 * One RTP session's SRTP (RFC 3711) when the answer agreed SDES keys: a context per direction, each with its own
 * master key. An unchanged key keeps its context, so its rollover counter and replay window carry on; a new bot key
 * re-keys what we receive (RFC 4568 §7.1.4), with the old context still tried until the new key has authenticated a
 * packet (packets in flight).
 */
export class SrtpPair {
  private send: { key: SrtpMasterKey; context: SrtpContext } | null = null;
  private recv: { key: SrtpMasterKey; context: SrtpContext } | null = null;
  private previousRecv: SrtpContext | null = null;

  /** SRTP is on: every packet sent is encrypted, every one received must authenticate. */
  get on(): boolean {
    return this.send !== null;
  }

  /** An answer's keys, or undefined for plain RTP from now on. True when the bot's key changed (a re-key). */
  apply(keys: SrtpKeys | undefined): boolean {
    if (keys === undefined) {
      this.send = this.recv = this.previousRecv = null;
      return false;
    }
    if (this.send === null || !sameMasterKey(this.send.key, keys.ourKey)) {
      this.send = { key: keys.ourKey, context: new SrtpContext(keys.ourKey) };
    }
    if (this.recv !== null && sameMasterKey(this.recv.key, keys.theirKey)) return false;
    this.previousRecv = this.recv?.context ?? null;
    this.recv = { key: keys.theirKey, context: new SrtpContext(keys.theirKey) };
    return this.previousRecv !== null;
  }

  /**
   * The SRTP packet for a plain one (~7 µs, sip-notes §3.1; the AES and HMAC objects Node makes per packet are not
   * avoidable through its crypto API); a new buffer, so `plain` may be reused at once. Null only for a packet too
   * short to be RTP. Only while `on`.
   */
  protect(plain: Buffer): Buffer | null {
    return this.send!.context.protect(plain);
  }

  /**
   * The plain packet (~9 µs); null when it fails authentication or is a replay (RFC 3711 §3.3.2), not told apart:
   * both mean the packet is not the bot's. Only while `on`.
   */
  unprotect(msg: Buffer): Buffer | null {
    const plain = this.recv!.context.unprotect(msg);
    if (plain !== null) {
      this.previousRecv = null;
      return plain;
    }
    return this.previousRecv?.unprotect(msg) ?? null;
  }

  /** SRTCP for a report of ours (a new buffer). Only while `on`. */
  protectRtcp(plain: Buffer): Buffer | null {
    return this.send!.context.protectRtcp(plain);
  }

  /** The bot's report, authenticated and decrypted, or null, as unprotect(). Only while `on`. */
  unprotectRtcp(msg: Buffer): Buffer | null {
    return this.recv!.context.unprotectRtcp(msg) ?? this.previousRecv?.unprotectRtcp(msg) ?? null;
  }
}
