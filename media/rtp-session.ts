import { randomInt } from 'node:crypto';
import type { RemoteInfo, Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { DtmfPacketizer, parse } from 'rtp-packet';
import type { ClockSubscription, FrameSink, MediaClock } from './clock.js';
import { DtmfReceiver } from './dtmf.js';
import { LogLimiter } from './log-limiter.js';
import { PlayoutBuffer } from './playout.js';
import { Reception, type ReceptionStats } from './reception.js';
import type { RtpPortPool } from './port-pool.js';
import { sameMasterKey, type SrtpMasterKey } from './sdes.js';
import { SrtpContext } from './srtp.js';
import { HOLD_ADDRESS, type RemoteMedia } from './sdp.js';

export interface RtpDelegate {
  /**
   * PCMU payload of one bot packet. A zero-copy view into that packet's datagram (or, with SRTP, its decrypted
   * copy), which is allocated per packet and never reused, so it stays valid if kept.
   */
  onAudio(payload: Buffer): void;
  /** One RFC 4733 digit, reported once per key press (see DtmfReceiver). */
  onDtmf?(digit: string, durationMs: number): void;
}

export interface RtpSessionOptions {
  pool: RtpPortPool;
  clock: MediaClock;
  log: Logger;
  delegate: RtpDelegate;
  /** The caller playout buffer's hard cap (PlayoutBuffer maxMs): past it the oldest audio goes. Default 1000 ms. */
  maxPlayoutMs?: number;
}

/** Loss, lateness and jitter of the bot's packets come from ReceptionStats (RFC 3550 Appendix A). */
export interface RtpSessionStats extends ReceptionStats {
  packetsSent: number;
  /** UDP payload bytes, RTP header included. */
  bytesSent: number;
  /** Every datagram that reached the socket, dropped ones included. */
  packetsReceived: number;
  bytesReceived: number;
  /** Valid telephone-event packets (several per digit). */
  dtmfPackets: number;
  /** Telephone-event packets we sent (8 per digit: 5 updates, 3 end; also counted in packetsSent). */
  dtmfPacketsSent: number;
  /** From an IP other than the answer's c= address, or before receive() or start(). */
  droppedForeign: number;
  /** Not RTP v2, truncated, an empty PCMU payload, or a telephone-event payload that is not a tone. */
  droppedMalformed: number;
  /** Neither PCMU nor the answer's telephone-event PT: comfort noise (13), RTCP sent to the RTP port (72-76), ... */
  droppedUnknownPt: number;
  /** SRTP on, and the packet failed authentication (tampered, wrong key, plain RTP) or was a replay. */
  droppedSrtp: number;
  /** Accepted anyway: sipp replays audio and DTMF pcaps with their recorded SSRCs (sip-notes §7). */
  ssrcChanges: number;
  /** Accepted anyway: loss, reordering, or a new pcap's sequence numbers. */
  sequenceGaps: number;
  /** Caller frames that held sound, dropped at the playout buffer's cap: speech the bot never heard. */
  callerSpeechLostFrames: number;
  /** Silence sent to the bot in place of caller audio: late audio (it plays when it comes), or a stretched pause. */
  callerSilenceInsertedFrames: number;
  /** Silent caller frames left out to take delay back. */
  callerSilenceRemovedFrames: number;
  /** Times the caller's audio came too late for its frame while it was flowing. */
  playoutUnderruns: number;
  /** Times the frames toward the bot were moved closer to the caller's. */
  playoutPhaseShifts: number;
  /** Caller audio waiting in the playout buffer now, and at most since the call began. */
  playoutDelayMs: number;
  maxPlayoutDelayMs: number;
  /** Socket 'error' events (e.g. send to an unreachable network). */
  socketErrors: number;
  /** Delegate callbacks that threw. */
  delegateErrors: number;
}

type Counters = Omit<
  RtpSessionStats,
  | 'callerSpeechLostFrames'
  | 'callerSilenceInsertedFrames'
  | 'callerSilenceRemovedFrames'
  | 'playoutUnderruns'
  | 'playoutPhaseShifts'
  | 'playoutDelayMs'
  | 'maxPlayoutDelayMs'
  | keyof ReceptionStats
>;

const PT_PCMU = 0;
const RTP_HEADER_BYTES = 12;
/** 20 ms of PCMU: one frame per clock tick, and the RTP timestamp step (8 kHz clock). */
const FRAME_BYTES = 160;
const BYTES_PER_MS = 8;
/**
 * One digit sent to the bot (RFC 4733): an update every frame for DTMF_TONE_FRAMES frames (100 ms, the tone), then
 * the end packet three times at that same 20 ms interval (§2.5.1.4). The tone's length is ours to choose: Talkdesk's
 * `dtmf` frame says which key, not for how long; 100 ms is well above the 40 ms a DTMF receiver must accept.
 */
const DTMF_TONE_FRAMES = 5;
/** RFC 4733 events 0-15: the DTMF keys. */
const DTMF_DIGIT = /^[0-9*#A-D]$/;
/** Digits waiting their turn; a caller typing faster than 160 ms a digit for this long is not a caller. */
const MAX_QUEUED_DIGITS = 32;
/**
 * The longest PCMU payload taken from the bot: 200 ms at 8 kHz, one byte a sample. RFC 3551 §4.2 asks a receiver to
 * accept 0 to 200 ms a packet, so no sender can count on more (bots send 20 ms, as we offer, some 30-60 ms).
 * Each payload goes to Talkdesk as one `media` frame, byte for byte: without a bound a 65,000-byte datagram became
 * a 65,000-byte frame (issue 13). Anything longer is not a plausible frame and is dropped as malformed.
 */
const MAX_PCMU_PAYLOAD_BYTES = 1600;

/**
 * One call's RTP: a socket from the pool, one packet per clock frame to the bot, and the bot's packets filtered and
 * handed to the delegate.
 *
 * The socket is never connect()ed: a connected UDP socket drops datagrams from any other source port, and peers
 * such as sipp 3.7 send from a port other than their SDP one. Instead, packets are accepted from any port of the
 * answer's IP.
 */
export class RtpSession {
  readonly localPort: number;

  private readonly socket: Socket;
  private readonly pool: RtpPortPool;
  private readonly clock: MediaClock;
  private readonly log: Logger;
  private readonly delegate: RtpDelegate;
  private readonly playout: PlayoutBuffer;
  private readonly dtmf: DtmfReceiver;
  private readonly dropLog = new LogLimiter();
  private readonly errorLog = new LogLimiter();
  private readonly counters: Counters = {
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    dtmfPackets: 0,
    dtmfPacketsSent: 0,
    droppedForeign: 0,
    droppedMalformed: 0,
    droppedUnknownPt: 0,
    droppedSrtp: 0,
    ssrcChanges: 0,
    sequenceGaps: 0,
    socketErrors: 0,
    delegateErrors: 0,
  };

  private remote: RemoteMedia | null = null;
  private dtmfPayloadType = -1;
  private sending = false;
  /** the bot's packets are taken: from an early answer on (receive()), or from the answer (start()) */
  private receiving = false;
  private clockSlot: ClockSubscription | null = null;
  private closed = false;

  // RFC 3550 §5.1: random SSRC and random initial sequence number and timestamp.
  private readonly ssrc = randomInt(0, 2 ** 32);
  private seq = randomInt(0, 2 ** 16);
  private timestamp = randomInt(0, 2 ** 32);
  /** RFC 3551 §4.1: marker on the first packet of a talkspurt, i.e. the first one sent and after a pause. */
  private marker = true;

  private lastSsrc = -1;
  /** RFC 3550 loss, lateness and jitter of the bot's packets, for the summary and metrics */
  private readonly reception = new Reception();
  private lastSeq = 0;

  /** Digits from sendDigit() not yet started, and the packets of the one being sent, one per frame. */
  private readonly digitQueue: string[] = [];
  private dtmfPackets: Buffer[] = [];
  private noTelephoneEventLogged = false;
  /** Where a frame of caller audio goes while an event is sent instead of it. */
  private readonly discardFrame = Buffer.allocUnsafe(FRAME_BYTES);

  /** SRTP (RFC 3711) when the answer agreed SDES keys: one context per direction, each with its own master key. */
  private sendSrtp: { key: SrtpMasterKey; context: SrtpContext } | null = null;
  private recvSrtp: { key: SrtpMasterKey; context: SrtpContext } | null = null;
  /** The receive context a re-key replaced, kept until the new key authenticates a packet (packets in flight). */
  private previousRecvSrtp: SrtpContext | null = null;
  /** The plain packet, built here and encrypted into a new buffer: reused, since protect() copies it at once. */
  private readonly plainScratch = Buffer.allocUnsafe(RTP_HEADER_BYTES + FRAME_BYTES);

  /** Binds a port from the pool and listens; sends nothing until start(). */
  static async open(opts: RtpSessionOptions): Promise<RtpSession> {
    const { socket, port } = await opts.pool.open();
    return new RtpSession(opts, socket, port);
  }

  private constructor(opts: RtpSessionOptions, socket: Socket, port: number) {
    this.socket = socket;
    this.localPort = port;
    this.pool = opts.pool;
    this.clock = opts.clock;
    this.delegate = opts.delegate;
    this.log = opts.log.child({ rtpPort: port });
    this.playout = new PlayoutBuffer({ frameBytes: FRAME_BYTES, maxMs: opts.maxPlayoutMs, heldUpMs: () => this.clock.behindMs });
    this.dtmf = new DtmfReceiver((digit, durationMs) => this.delegate.onDtmf?.(digit, durationMs));
    socket.on('message', this.onMessage);
    socket.on('error', this.onSocketError);
  }

  /**
   * Starts sending one packet per 20 ms frame to remote.address:port and accepting the bot's packets. A second
   * call acts as setRemote(). Ignored after close().
   */
  start(remote: RemoteMedia): void {
    if (this.closed) return;
    this.setRemote(remote);
    this.receiving = true;
    if (this.clockSlot === null) {
      // Caller audio from before the answer was spoken to nobody; kept, it would sit in front of every later frame
      // as delay toward the bot until the playout buffer trimmed it.
      this.playout.clear();
      this.clockSlot = this.clock.add(this.sink);
    }
  }

  /**
   * Takes the bot's packets from remote's address, as start() does, but sends nothing: an early answer (a 18x SDP,
   * RFC 3960) lets the bot play a prompt before anyone has answered it, and caller audio is owed only from the 2xx,
   * when start() begins the frames (and moves the destination if the 2xx says another). Ignored after close().
   */
  receive(remote: RemoteMedia): void {
    if (this.closed) return;
    this.setRemote(remote);
    this.receiving = true;
  }

  /**
   * Applies a new answer (re-INVITE): destination, telephone-event PT and direction change; SSRC, sequence and
   * timestamp carry on, as one RTP stream. Before start() it only records the answer.
   *
   * `remote.srtp` turns SRTP on (or off, when absent). A new bot key re-keys what we receive (RFC 4568 §7.1.4): a
   * new context, with the old one still tried until the new key has authenticated a packet. An unchanged key keeps
   * its context, so its rollover counter and replay window carry on.
   */
  setRemote(remote: RemoteMedia): void {
    if (this.closed) return;
    this.applyKeys(remote);
    const wasSending = this.sending;
    this.remote = remote;
    this.dtmfPayloadType = remote.dtmfPayloadType ?? -1;
    this.sending =
      remote.address !== HOLD_ADDRESS && remote.port > 0 && (remote.direction === 'sendrecv' || remote.direction === 'recvonly');
    if (this.sending && !wasSending) this.marker = true;
  }

  /** SRTP is on: every packet sent is encrypted, every one received must authenticate. */
  get secure(): boolean {
    return this.sendSrtp !== null;
  }

  private applyKeys(remote: RemoteMedia): void {
    const keys = remote.srtp;
    if (keys === undefined) {
      this.sendSrtp = this.recvSrtp = this.previousRecvSrtp = null;
      return;
    }
    if (this.sendSrtp === null || !sameMasterKey(this.sendSrtp.key, keys.ourKey)) {
      this.sendSrtp = { key: keys.ourKey, context: new SrtpContext(keys.ourKey) };
    }
    if (this.recvSrtp === null || !sameMasterKey(this.recvSrtp.key, keys.theirKey)) {
      this.previousRecvSrtp = this.recvSrtp?.context ?? null;
      this.recvSrtp = { key: keys.theirKey, context: new SrtpContext(keys.theirKey) };
      if (this.previousRecvSrtp !== null) this.log.info('bot re-keyed SRTP');
    }
  }

  /** Caller audio (μ-law, any chunk size) for the bot. Ignored after close(). */
  write(mulaw: Uint8Array): void {
    if (this.closed) return;
    this.playout.push(mulaw);
    this.applyPhaseShift();
    // after the push, so that a frame due now takes this audio
    this.clock.poll();
  }

  /** The playout buffer's move of this call's frames, asked for after a pull or after late audio came. */
  private applyPhaseShift(): void {
    const shift = this.playout.takePhaseShift();
    if (shift !== 0 && this.clockSlot !== null) this.playout.pullsMoved(shift, this.clockSlot.shift(shift));
  }

  /**
   * One DTMF digit (0-9, *, #, A-D) for the bot as RFC 4733 telephone-events, sent on the media clock's frames in the
   * audio's SSRC, sequence space and timestamp clock. False (and logged once) when it cannot be: the answer has no
   * telephone-event, or the session is closed; digits beyond MAX_QUEUED_DIGITS waiting are dropped too.
   */
  sendDigit(digit: string): boolean {
    if (this.closed) return false;
    if (this.dtmfPayloadType < 0) {
      if (!this.noTelephoneEventLogged) {
        this.noTelephoneEventLogged = true;
        this.log.warn({ digit }, "digit for the bot dropped: its answer has no telephone-event (logged once a call)");
      }
      return false;
    }
    if (!DTMF_DIGIT.test(digit) || this.digitQueue.length >= MAX_QUEUED_DIGITS) return false;
    this.digitQueue.push(digit);
    return true;
  }

  /** Idempotent: stops the frames, closes the socket, returns the port to the pool. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clockSlot?.remove();
    this.clockSlot = null;
    try {
      this.socket.close();
    } catch (err) {
      this.log.warn({ err }, 'closing RTP socket failed');
    }
    this.pool.release(this.localPort);
    this.playout.clear();
    this.digitQueue.length = 0;
    this.dtmfPackets = [];
  }

  /**
   * Packets the bot sent that were taken (audio or telephone-event): the liveness counter the call's watchdog
   * compares between sweeps. Derived from the counters, so it costs the receive path nothing.
   */
  get packetsAccepted(): number {
    const c = this.counters;
    return c.packetsReceived - c.droppedForeign - c.droppedMalformed - c.droppedUnknownPt - c.droppedSrtp;
  }

  /** The answer says the bot sends us media (sendrecv or sendonly, not on hold): silence from it means something. */
  get botSends(): boolean {
    const r = this.remote;
    return (
      !this.closed &&
      this.clockSlot !== null &&
      r !== null &&
      r.address !== HOLD_ADDRESS &&
      (r.direction === 'sendrecv' || r.direction === 'sendonly')
    );
  }

  get stats(): RtpSessionStats {
    const p = this.playout.stats;
    return {
      ...this.counters,
      ...this.reception.stats,
      callerSpeechLostFrames: p.speechLostFrames,
      callerSilenceInsertedFrames: p.silenceInsertedFrames,
      callerSilenceRemovedFrames: p.silenceRemovedFrames,
      playoutUnderruns: p.underruns,
      playoutPhaseShifts: p.phaseShifts,
      playoutDelayMs: this.playout.depthBytes / BYTES_PER_MS,
      maxPlayoutDelayMs: p.maxDepthBytes / BYTES_PER_MS,
    };
  }

  private readonly sink: FrameSink = {
    onFrame: () => {
      this.sendFrame();
      this.applyPhaseShift();
    },
  };

  /*
   * RFC 3550 §5.1 fixed header, written by hand straight into the packet that is sent: rtp-packet's serialize()
   * would need the payload in a buffer of its own first (two allocations per packet instead of one).
   *  0                   1                   2                   3
   *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
   * |                           timestamp                           |
   * |           synchronization source (SSRC) identifier            |
   * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   */
  private sendFrame(): void {
    if (this.closed) return;
    if (!this.sending) {
      // On hold / sendonly bot: the caller's audio of this frame is discarded, and the timestamp still advances so
      // the stream resumes at the right media time (RFC 3550 §5.1: it counts sampling instants, sent or not).
      this.playout.clear();
      this.timestamp = (this.timestamp + FRAME_BYTES) >>> 0;
      return;
    }
    if (this.dtmfPackets.length > 0 || this.digitQueue.length > 0) {
      this.sendDtmfFrame();
      return;
    }
    const remote = this.remote!;
    const srtp = this.sendSrtp;
    // A new Buffer every time: with an unconnected socket the sendmsg runs in a later tick, so a reused buffer
    // could be overwritten while still queued (sip-notes §5). With SRTP the plain packet goes into the scratch
    // buffer instead and protect() returns the new one that is queued: still one packet buffer per packet.
    let pkt: Buffer = srtp === null ? Buffer.allocUnsafe(RTP_HEADER_BYTES + FRAME_BYTES) : this.plainScratch;
    pkt[0] = 0x80;
    pkt[1] = this.marker ? 0x80 | PT_PCMU : PT_PCMU;
    pkt.writeUInt16BE(this.seq, 2);
    pkt.writeUInt32BE(this.timestamp, 4);
    pkt.writeUInt32BE(this.ssrc, 8);
    this.playout.pullInto(pkt, RTP_HEADER_BYTES);
    if (srtp !== null) {
      // ~7 µs a packet (sip-notes §3.1); the AES and HMAC objects Node makes per packet are not avoidable through
      // its crypto API. Never null for the RTP packet built above.
      const encrypted = srtp.context.protect(pkt);
      if (encrypted === null) return;
      pkt = encrypted;
    }
    // Numeric IP (parseAnswer guarantees it), so dgram skips DNS.
    this.socket.send(pkt, remote.port, remote.address);
    this.marker = false;
    this.seq = (this.seq + 1) & 0xffff;
    this.timestamp = (this.timestamp + FRAME_BYTES) >>> 0;
    this.counters.packetsSent++;
    this.counters.bytesSent += pkt.length;
  }

  /**
   * One frame of a digit instead of the caller's audio. The digit's packets are built when it starts: its RTP
   * timestamp is the audio timestamp of that frame (RFC 4733 §2.5.1.2: fixed for the whole event, the duration field
   * grows instead), marker on the first packet only, sequence numbers taken from the audio's counter, since the
   * events share the audio's SSRC. The caller's audio frames during the event are suppressed (pulled from the
   * playout buffer and dropped), not sent alongside it: that audio is the in-band tone itself, or whatever Talkdesk
   * sends while the key is down, and a bot decoding both would take the digit twice; one packet per 20 ms instant
   * also keeps the sequence space one stream. The audio timestamp keeps advancing through the event (RFC 3550 §5.1:
   * it counts sampling instants, sent or not), and the first audio packet after it marks a new talkspurt
   * (RFC 3551 §4.1).
   */
  private sendDtmfFrame(): void {
    if (this.dtmfPackets.length === 0) {
      const digit = this.digitQueue.shift()!;
      const packetizer = new DtmfPacketizer({
        ssrc: this.ssrc,
        payloadType: this.dtmfPayloadType,
        // rtp-packet defaults to 48000 (sip-notes §3): telephone-event/8000 is the only rate we offer
        clockRate: 8000,
        nextSequenceNumber: () => {
          const seq = this.seq;
          this.seq = (seq + 1) & 0xffff;
          return seq;
        },
      });
      packetizer.startEvent(digit, this.timestamp);
      for (let i = 0; i < DTMF_TONE_FRAMES; i++) this.dtmfPackets.push(packetizer.update(FRAME_BYTES / BYTES_PER_MS));
      // endEvent() builds the three E=1 packets at once; they go out one a frame, as §2.5.1.4 asks
      this.dtmfPackets.push(...packetizer.endEvent(0));
    }
    this.playout.pullInto(this.discardFrame, 0);
    let pkt: Buffer | null = this.dtmfPackets.shift()!;
    if (this.sendSrtp !== null) pkt = this.sendSrtp.context.protect(pkt);
    if (pkt !== null) {
      this.socket.send(pkt, this.remote!.port, this.remote!.address);
      this.counters.packetsSent++;
      this.counters.dtmfPacketsSent++;
      this.counters.bytesSent += pkt.length;
    }
    this.timestamp = (this.timestamp + FRAME_BYTES) >>> 0;
    if (this.dtmfPackets.length === 0 && this.digitQueue.length === 0) this.marker = true;
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    this.clock.poll();
    if (this.closed) return;
    const c = this.counters;
    c.packetsReceived++;
    c.bytesReceived += msg.length;
    const remote = this.remote;
    if (!this.receiving || remote === null || rinfo.address !== remote.address) {
      c.droppedForeign++;
      this.logDrop(this.receiving ? 'foreign-source' : 'before-start', rinfo);
      return;
    }
    let rtp: Buffer = msg;
    if (this.recvSrtp !== null) {
      // Cheap checks first, so RTCP (RFC 5761 §4: PT 64-95 on a shared port) and junk cost no HMAC.
      if (msg.length < RTP_HEADER_BYTES || msg[0]! >> 6 !== 2) {
        c.droppedMalformed++;
        this.logDrop('malformed', rinfo);
        return;
      }
      const pt = msg[1]! & 0x7f;
      if (pt >= 64 && pt <= 95) {
        c.droppedUnknownPt++;
        this.logDrop('unknown-payload-type', rinfo, pt);
        return;
      }
      const decrypted = this.decrypt(msg);
      if (decrypted === null) {
        c.droppedSrtp++;
        this.logDrop('srtp-unauthenticated-or-replayed', rinfo);
        return;
      }
      rtp = decrypted;
    }
    const pkt = parse(rtp);
    if (pkt === null) {
      c.droppedMalformed++;
      this.logDrop('malformed', rinfo);
      return;
    }
    const pt = pkt.payloadType;
    if (pt !== PT_PCMU && pt !== this.dtmfPayloadType) {
      c.droppedUnknownPt++;
      this.logDrop('unknown-payload-type', rinfo, pt);
      return;
    }

    if (pkt.ssrc !== this.lastSsrc) {
      if (this.lastSsrc !== -1) c.ssrcChanges++;
      this.lastSsrc = pkt.ssrc;
      this.reception.restart();
    } else if (pkt.sequenceNumber !== ((this.lastSeq + 1) & 0xffff)) {
      c.sequenceGaps++;
    }
    this.lastSeq = pkt.sequenceNumber;
    this.reception.receive(pkt.sequenceNumber, performance.now(), pt === PT_PCMU ? pkt.timestamp : undefined);

    try {
      if (pt === PT_PCMU) {
        if (pkt.payload.length === 0) {
          c.droppedMalformed++;
          this.logDrop('empty-payload', rinfo, pt);
        } else if (pkt.payload.length > MAX_PCMU_PAYLOAD_BYTES) {
          c.droppedMalformed++;
          this.logDrop('oversized-payload', rinfo, pt);
        } else {
          this.delegate.onAudio(pkt.payload);
        }
      } else if (this.dtmf.receive(pkt.timestamp, pkt.payload)) {
        c.dtmfPackets++;
      } else {
        c.droppedMalformed++;
        this.logDrop('malformed-telephone-event', rinfo, pt);
      }
    } catch (err) {
      c.delegateErrors++;
      if (this.errorLog.take() >= 0) this.log.error({ err }, 'RTP delegate threw');
    }
  };

  /**
   * ~9 µs a packet (sip-notes §3.1); null when it fails authentication or is a replay (RFC 3711 §3.3.2), not told
   * apart: both mean the packet is not the bot's. After a re-key the old context is tried too, until the new key
   * has worked.
   */
  private decrypt(msg: Buffer): Buffer | null {
    const plain = this.recvSrtp!.context.unprotect(msg);
    if (plain !== null) {
      this.previousRecvSrtp = null;
      return plain;
    }
    return this.previousRecvSrtp?.unprotect(msg) ?? null;
  }

  private readonly onSocketError = (err: Error): void => {
    this.counters.socketErrors++;
    const suppressed = this.errorLog.take();
    if (suppressed >= 0) this.log.warn({ err, suppressed }, 'RTP socket error');
  };

  private logDrop(reason: string, rinfo: RemoteInfo, payloadType?: number): void {
    const suppressed = this.dropLog.take();
    if (suppressed < 0) return;
    this.log.warn(
      { reason, from: `${rinfo.address}:${rinfo.port}`, expected: this.remote?.address, payloadType, suppressed },
      'dropping RTP packets (logged at most every 10 s)',
    );
  }
}
