import type { RemoteInfo, Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { parse } from 'rtp-packet';
import type { ClockSubscription, FrameSink, MediaClock } from './clock.js';
import { DtmfReceiver, DtmfSender } from './dtmf.js';
import { LogLimiter } from './log-limiter.js';
import { PlayoutBuffer } from './playout.js';
import { Reception, type ReceptionStats } from './reception.js';
import { isRtcp } from './rtcp.js';
import { RtcpReporter, type RtcpStats } from './rtcp-reporter.js';
import { RTP_HEADER_BYTES, RtpSequencer } from './rtp-sequencer.js';
import type { RtpPortPool } from './port-pool.js';
import { SrtpPair } from './srtp-pair.js';
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
  /** From an IP other than the answer's c= address, or come before receive() or start() and not held (EARLY_HOLD_MS). */
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
  /** Caller audio waiting in the playout buffer now, and at most since the bot answered, and when (ms after the answer). */
  playoutDelayMs: number;
  maxPlayoutDelayMs: number;
  maxPlayoutDelayAtMs: number;
  /** Socket 'error' events (e.g. send to an unreachable network). */
  socketErrors: number;
  /** Delegate callbacks that threw. */
  delegateErrors: number;
  /** RTCP both ways (RFC 3550 §6): our reports, and what the bot's said of our stream */
  rtcp: RtcpStats;
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
  | 'maxPlayoutDelayAtMs'
  | 'rtcp'
  | keyof ReceptionStats
>;

const PT_PCMU = 0;
/** RFC 4733 §2.3: a telephone-event payload is 4 bytes */
const DTMF_PAYLOAD_BYTES = 4;
/** 20 ms of PCMU: one frame per clock tick, and the RTP timestamp step (8 kHz clock). */
const FRAME_BYTES = 160;
const BYTES_PER_MS = 8;
/**
 * The bot starts its RTP as it sends its 2xx (or 18x), so its first packets can come before the answer has been
 * read: 40 ms of them at the start of a call, which were dropped as `before-start`. Up to EARLY_HOLD_PACKETS are held
 * for EARLY_HOLD_MS, and taken when receive() or start() names the answer's address (and keys, for SRTP), as though
 * they came then. A port's previous call's strays are seconds older (the pool hands a port out again last), and
 * anyone else's are dropped by the answer's address, as always.
 */
const EARLY_HOLD_MS = 200;
const EARLY_HOLD_PACKETS = 16;
/**
 * The longest PCMU payload taken from the bot: 200 ms at 8 kHz, one byte a sample. RFC 3551 §4.2 asks a receiver to
 * accept 0 to 200 ms a packet, so no sender can count on more (bots send 20 ms, as we offer, some 30-60 ms).
 * Each payload goes to Talkdesk as one `media` frame, byte for byte: without a bound a 65,000-byte datagram became
 * a 65,000-byte frame (issue 13). Anything longer is not a plausible frame and is dropped as malformed.
 */
const MAX_PCMU_PAYLOAD_BYTES = 1600;
/** A compound report of a two-party call is under 200 bytes; anything past a datagram's MTU is not one. */
const MAX_RTCP_BYTES = 1500;

/**
 * One call's RTP: a socket from the pool, one packet per clock frame to the bot, and the bot's packets filtered and
 * handed to the delegate; and its RTCP, on the pair's odd port or multiplexed on the RTP one (RtcpReporter).
 *
 * The socket is never connect()ed: a connected UDP socket drops datagrams from any other source port, and peers
 * such as sipp 3.7 send from a port other than their SDP one. Instead, packets are accepted from any port of the
 * answer's IP.
 */
export class RtpSession {
  readonly localPort: number;

  private readonly socket: Socket;
  /** the pair's RTCP port (RFC 3550 §11), used unless the answer agreed a=rtcp-mux */
  private readonly rtcpSocket: Socket;
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
  /** packets that came before the answer named their source (EARLY_HOLD_MS) */
  private held: Array<{ msg: Buffer; rinfo: RemoteInfo; at: number }> = [];
  private clockSlot: ClockSubscription | null = null;
  /** performance.now() at start(): the answer */
  private startedAt = 0;
  private closed = false;

  /** SSRC, sequence numbers, timestamps and markers of what we send: audio and digits alike. */
  private readonly sequencer = new RtpSequencer();

  private lastSsrc = -1;
  /** RFC 3550 loss, lateness and jitter of the bot's packets, for the summary and metrics */
  private readonly reception = new Reception();
  private lastSeq = 0;

  /** The caller's digits for the bot, each sent in place of its frames of audio. */
  private readonly digits = new DtmfSender(this.sequencer, FRAME_BYTES / BYTES_PER_MS);
  private noTelephoneEventLogged = false;
  /** Where a frame of caller audio goes while an event is sent instead of it. */
  private readonly discardFrame = Buffer.allocUnsafe(FRAME_BYTES);

  /** SRTP (RFC 3711) when the answer agreed SDES keys */
  private readonly srtp = new SrtpPair();
  /** The plain packet, built here and encrypted into a new buffer: reused, since protect() copies it at once. */
  private readonly plainScratch = Buffer.allocUnsafe(RTP_HEADER_BYTES + FRAME_BYTES);

  /** payload octets sent, for the SR (RFC 3550 §6.4.1: headers not counted) */
  private payloadOctetsSent = 0;
  private readonly rtcp: RtcpReporter;
  private botRtcpByeLogged = false;

  /** Binds a port from the pool and listens; sends nothing until start(). */
  static async open(opts: RtpSessionOptions): Promise<RtpSession> {
    const { socket, rtcpSocket, port } = await opts.pool.open();
    return new RtpSession(opts, socket, rtcpSocket, port);
  }

  private constructor(opts: RtpSessionOptions, socket: Socket, rtcpSocket: Socket, port: number) {
    this.socket = socket;
    this.rtcpSocket = rtcpSocket;
    this.localPort = port;
    this.pool = opts.pool;
    this.clock = opts.clock;
    this.delegate = opts.delegate;
    this.log = opts.log.child({ rtpPort: port });
    this.playout = new PlayoutBuffer({ frameBytes: FRAME_BYTES, maxMs: opts.maxPlayoutMs, heldUpMs: () => this.clock.behindMs });
    this.dtmf = new DtmfReceiver((digit, durationMs) => this.delegate.onDtmf?.(digit, durationMs));
    this.rtcp = new RtcpReporter(
      this.sequencer.ssrc,
      {
        sent: () => ({ packetCount: this.counters.packetsSent, octetCount: this.payloadOctetsSent, rtpTimestamp: this.sequencer.timestamp }),
        received: () => {
          const run = this.reception.run;
          return run === undefined ? undefined : { ssrc: this.lastSsrc >>> 0, ...run };
        },
      },
      this.sendRtcp,
    );
    socket.on('message', this.onMessage);
    socket.on('error', this.onSocketError);
    rtcpSocket.on('message', this.onRtcpMessage);
    rtcpSocket.on('error', this.onSocketError);
  }

  /**
   * Starts sending one packet per 20 ms frame to remote.address:port and accepting the bot's packets. A second
   * call acts as setRemote(). Ignored after close().
   */
  start(remote: RemoteMedia): void {
    if (this.closed) return;
    this.setRemote(remote);
    this.startReceiving();
    if (this.clockSlot === null) {
      this.startedAt = performance.now();
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
    this.startReceiving();
  }

  /** From now on the bot's packets are taken, the ones held since just before included. */
  private startReceiving(): void {
    if (this.receiving) return;
    this.receiving = true;
    const held = this.held;
    this.held = [];
    const now = performance.now();
    for (const h of held) {
      if (now - h.at <= EARLY_HOLD_MS) {
        this.take(h.msg, h.rinfo, h.at);
      } else {
        this.counters.droppedForeign++;
        this.logDrop('before-start', h.rinfo);
      }
    }
  }

  /**
   * Applies a new answer (re-INVITE): destination, telephone-event PT and direction change; SSRC, sequence and
   * timestamp carry on, as one RTP stream. Before start() it only records the answer.
   *
   * `remote.srtp` turns SRTP on (or off, when absent); a new bot key re-keys what we receive (SrtpPair).
   */
  setRemote(remote: RemoteMedia): void {
    if (this.closed) return;
    if (this.srtp.apply(remote.srtp)) this.log.info('bot re-keyed SRTP');
    const wasSending = this.sending;
    this.remote = remote;
    this.dtmfPayloadType = remote.dtmfPayloadType ?? -1;
    this.sending =
      remote.address !== HOLD_ADDRESS && remote.port > 0 && (remote.direction === 'sendrecv' || remote.direction === 'recvonly');
    if (this.sending && !wasSending) this.sequencer.talkspurt();
  }

  /** SRTP is on: every packet sent is encrypted, every one received must authenticate. */
  get secure(): boolean {
    return this.srtp.on;
  }

  /**
   * Caller audio (μ-law, any chunk size) for the bot. Ignored before start() and after close(): audio from before the
   * answer is spoken to nobody, and held while the bot rings it would fill the playout buffer to its cap, count as
   * speech lost there and as the call's deepest playout delay.
   */
  write(mulaw: Uint8Array): void {
    if (this.closed || this.clockSlot === null) return;
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
    return this.digits.enqueue(digit);
  }

  /** Idempotent: stops the frames, says RTCP BYE if media had begun, closes the sockets, returns the ports to the pool. */
  close(): void {
    if (this.closed) return;
    // RFC 3550 §6.6; the send is made here, before the socket closes (numericAddress: no lookup to wait for)
    if (this.clockSlot !== null) this.rtcp.bye();
    this.closed = true;
    this.clockSlot?.remove();
    this.clockSlot = null;
    for (const socket of [this.socket, this.rtcpSocket]) {
      try {
        socket.close();
      } catch (err) {
        this.log.warn({ err }, 'closing RTP socket failed');
      }
    }
    this.pool.release(this.localPort);
    this.playout.clear();
    this.digits.clear();
    this.held = [];
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
      maxPlayoutDelayAtMs: p.maxDepthAt < 0 ? 0 : Math.round(p.maxDepthAt - this.startedAt),
      rtcp: this.rtcp.stats,
    };
  }

  private readonly sink: FrameSink = {
    onFrame: () => {
      this.sendFrame();
      this.applyPhaseShift();
      this.rtcp.onFrame();
    },
  };

  /**
   * One frame: the caller's audio (or silence in its place) for the bot, or a digit's packet instead. The header is
   * written straight into the packet that is sent (RtpSequencer): rtp-packet's serialize() would need the payload in
   * a buffer of its own first (two allocations per packet instead of one).
   */
  private sendFrame(): void {
    if (this.closed) return;
    if (!this.sending) {
      // On hold / sendonly bot: the caller's audio of this frame is discarded, and the timestamp still advances so
      // the stream resumes at the right media time (RFC 3550 §5.1: it counts sampling instants, sent or not).
      this.playout.clear();
      this.sequencer.frameDone(FRAME_BYTES);
      return;
    }
    let pkt: Buffer;
    const digit = this.digits.busy;
    if (digit) {
      // The caller's audio frames during an event are pulled and dropped, not sent alongside it: that audio is the
      // in-band tone itself, or whatever Talkdesk sends while the key is down, and a bot decoding both would take the
      // digit twice; one packet per 20 ms instant also keeps the sequence space one stream.
      this.playout.pullInto(this.discardFrame, 0);
      pkt = this.digits.nextPacket(this.dtmfPayloadType);
      // RFC 3551 §4.1: the audio after the event begins a new talkspurt
      if (!this.digits.busy) this.sequencer.talkspurt();
    } else {
      // A new Buffer every time: with an unconnected socket the sendmsg runs in a later tick, so a reused buffer
      // could be overwritten while still queued (sip-notes §5). With SRTP the plain packet goes into the scratch
      // buffer instead and protect() returns the new one that is queued: still one packet buffer per packet.
      pkt = this.srtp.on ? this.plainScratch : Buffer.allocUnsafe(RTP_HEADER_BYTES + FRAME_BYTES);
      this.sequencer.writeHeader(pkt, PT_PCMU);
      this.playout.pullInto(pkt, RTP_HEADER_BYTES);
    }
    // The audio timestamp counts this frame whichever went (RFC 3550 §5.1).
    this.sequencer.frameDone(FRAME_BYTES);
    if (this.srtp.on) {
      // never null for an RTP packet built here
      const encrypted = this.srtp.protect(pkt);
      if (encrypted === null) return;
      pkt = encrypted;
    }
    const remote = this.remote!;
    // Numeric IP (parseAnswer guarantees it), so dgram skips DNS.
    this.socket.send(pkt, remote.port, remote.address);
    this.counters.packetsSent++;
    if (digit) this.counters.dtmfPacketsSent++;
    this.counters.bytesSent += pkt.length;
    this.payloadOctetsSent += digit ? DTMF_PAYLOAD_BYTES : FRAME_BYTES;
  }

  /**
   * One compound report to the bot: SRTCP when the call is secure; on the RTP port with a=rtcp-mux, else on the
   * pair's RTCP port to the answer's a=rtcp port or its RTP port + 1. Not while the bot is on hold (no address).
   */
  private readonly sendRtcp = (compound: Buffer): boolean => {
    const remote = this.remote;
    if (this.closed || remote === null || remote.address === HOLD_ADDRESS || remote.port === 0) return false;
    const port = remote.rtcpMux ? remote.port : (remote.rtcpPort ?? remote.port + 1);
    if (port > 65535) return false;
    const pkt = this.srtp.on ? this.srtp.protectRtcp(compound) : compound;
    if (pkt === null) return false;
    (remote.rtcpMux ? this.socket : this.rtcpSocket).send(pkt, port, remote.address);
    return true;
  };

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    this.clock.poll();
    if (this.closed) return;
    // RTCP on the RTP port (a=rtcp-mux)
    if (isRtcp(msg)) {
      this.takeRtcp(msg, rinfo);
      return;
    }
    const c = this.counters;
    c.packetsReceived++;
    c.bytesReceived += msg.length;
    if (this.receiving) this.take(msg, rinfo, performance.now());
    else this.hold(msg, rinfo);
  };

  private hold(msg: Buffer, rinfo: RemoteInfo): void {
    this.held.push({ msg, rinfo, at: performance.now() });
    if (this.held.length <= EARLY_HOLD_PACKETS) return;
    this.counters.droppedForeign++;
    this.logDrop('before-start', this.held.shift()!.rinfo);
  }

  /** One packet from the bot, if it is from the answer's address: checked, decrypted, counted, handed on. */
  private take(msg: Buffer, rinfo: RemoteInfo, arrivedAt: number): void {
    const c = this.counters;
    const remote = this.remote;
    if (remote === null || rinfo.address !== remote.address) {
      c.droppedForeign++;
      this.logDrop('foreign-source', rinfo);
      return;
    }
    let rtp: Buffer = msg;
    if (this.srtp.on) {
      // A cheap check first, so junk costs no HMAC (RTCP never comes here: onMessage took it).
      if (msg.length < RTP_HEADER_BYTES || msg[0]! >> 6 !== 2) {
        c.droppedMalformed++;
        this.logDrop('malformed', rinfo);
        return;
      }
      const decrypted = this.srtp.unprotect(msg);
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
    this.reception.receive(pkt.sequenceNumber, arrivedAt, pt === PT_PCMU ? pkt.timestamp : undefined);

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
  }

  private readonly onRtcpMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (!this.closed) this.takeRtcp(msg, rinfo);
  };

  /** One of the bot's RTCP datagrams, on either port: from the answer's address only, SRTCP when the call is secure. */
  private takeRtcp(msg: Buffer, rinfo: RemoteInfo): void {
    const remote = this.remote;
    if (!this.receiving || remote === null || rinfo.address !== remote.address) return this.dropRtcp('rtcp-foreign-source', rinfo);
    if (msg.length > MAX_RTCP_BYTES) return this.dropRtcp('rtcp-oversized', rinfo);
    const plain = this.srtp.on ? this.srtp.unprotectRtcp(msg) : msg;
    if (plain === null) return this.dropRtcp('srtcp-unauthenticated-or-replayed', rinfo);
    const report = this.rtcp.take(plain);
    if (!report.ok) {
      this.logDrop('rtcp-malformed', rinfo);
    } else if (report.value.bye && !this.botRtcpByeLogged) {
      this.botRtcpByeLogged = true;
      this.log.info('bot left the RTP session (RTCP BYE)');
    }
  }

  private dropRtcp(reason: string, rinfo: RemoteInfo): void {
    this.rtcp.dropped();
    this.logDrop(reason, rinfo);
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
