/**
 * The load generator: N fake Talkdesk clients (real `ws` clients sending a caller's speech and pauses, the speech
 * frames marked, on a sender profile's schedule: test/support/sender-profiles.ts) and N lean bot legs (one UDP SIP
 * UAS answering every INVITE, one RTP socket per leg sending marked 20 ms PCMU and recording when our RTP arrives).
 * Run by run.ts pinned to the other core than the plugin; driven over IPC.
 *
 * Reused from the project: the phased MediaClock (media/clock.ts) paces both senders, the sender profiles and the
 * espeak-ng speech come from test/support, media/silence.ts says which of its frames are pauses, the embedded stack's SIP parser
 * reads the plugin's requests, botSdp/offeredPort (test/support/node-bot.ts) write and read the SDP, and the Voice
 * Stream URL and JWT come from test/support. FakeTalkdesk and FakeUas are not used as they are: both keep every
 * message for a test's assertions (and FakeUas finds them by a linear scan), which at thousands of calls and
 * 50 frames/s each is the load generator's memory and CPU, not the plugin's.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { MediaClock, type ClockSubscription, type FrameSink } from '../media/clock.js';
import { isRtcp } from '../media/rtcp.js';
import { isSilentFrame } from '../media/silence.js';
import { LatencyHistogram } from '../media/stats.js';
import { parseSipMessage, type IncomingMessage } from '../plugin/sip/embedded/message.js';
import { frames, speechWithPauses } from '../test/support/audio.js';
import { makeToken, talkdeskUrl } from '../test/support/fake-talkdesk.js';
import { botSdp, offeredPort } from '../test/support/node-bot.js';
import { senderSchedule, type Chunk, type SenderProfile } from '../test/support/sender-profiles.js';
import { EXAMPLE_BOT } from '../test/support/talkdesk-call.js';
import {
  FRAME_BYTES,
  RING,
  SILENCE,
  SILENT_FRAME_BASE64,
  histogramPercentiles,
  median,
  packetCountError,
  percentiles,
  readMarker,
  round,
  speechFrameBase64,
  writeSpeechFrame,
  type Churn,
  type ChurnProgress,
  type Command,
  type DirectionReport,
  type EndReport,
  type StartCalls,
  type StartReport,
  type Target,
  type WindowReport,
} from './common.js';

const HOST = '127.0.0.1';
const SETUP_TIMEOUT_MS = 10_000;
const END_TIMEOUT_MS = 5_000;
/**
 * How long window-report waits for the window's frames still on their way: the playout buffer may hold a burst's
 * 500 ms and more for a while before it has shortened enough pauses. A frame later than this is lost to a bot anyway.
 */
const DRAIN_MAX_MS = 3_000;
/**
 * The bots' RTP senders, on the project's clock as the plugin's are, but a late step runs at once and is polled from
 * every packet the load generator reads (pollClocks): what they send is on a schedule, and waiting for a batch of
 * this process's I/O only made the far end see the load generator's own stalls.
 */
const botClock = new MediaClock({ deferLateSteps: false });

/**
 * The caller's speech pattern: one entry per 20 ms of a real espeak-ng utterance with pauses, 1 where it is speech
 * and 0 where media/silence.ts calls it silent. Every call repeats it, each from its own place: its speech frames are
 * marked, its pauses pure μ-law silence, so the plugin's playout buffer has real pauses to shorten and each speech
 * frame that does not reach the bot is counted.
 */
let speechPattern = new Uint8Array(0);
async function loadSpeechPattern(): Promise<void> {
  speechPattern = Uint8Array.from(frames(await speechWithPauses()), (f) => (isSilentFrame(f) ? 0 : 1));
  // the bench's own frames must read as what they stand for, or "speech lost" would count the wrong frames
  const speech = Buffer.alloc(FRAME_BYTES);
  writeSpeechFrame(speech, 0, 0x12345678);
  if (isSilentFrame(speech)) throw new Error('the bench speech frame reads as silence (media/silence.ts)');
  if (!isSilentFrame(Buffer.from(SILENT_FRAME_BASE64, 'base64'))) throw new Error('the bench silent frame reads as speech');
}

/** Something the pacer asks, every tick, to send what is due. */
interface PacedSender {
  /** `tick`: the tick's time on the pacer's exact grid; `now`: when it really runs. */
  sendDue(tick: number, now: number): void;
}

/**
 * The ticks of every call's Talkdesk sender: one MediaClock of one slot, PACER_STEP_MS apart, so one setTimeout chain
 * for all calls and never a timer per frame. Each tick sends, for every call, the chunks whose time has come: a
 * chunk leaves at the tick nearest its scheduled time, within ±1 ms of it plus the tick's own lateness. That is the
 * resolution of the jitter profile's ±40 ms. Whether a chunk is due is decided on the tick's place on the grid, not
 * on when it ran: a steady sender's frames then always go at the same tick of each 20 ms, as a sender on its own
 * clock would (measured at 20 calls: sent 0.6 ms around their time, p1 to p99). Decided on the time it ran, a tick a
 * fraction of a millisecond early or late moved some frames by a whole step (−0.9 to +1.3 ms), jitter the steady
 * sender must not have. A tick costs one comparison per call with nothing due (at 200 calls, 100,000 a second: well
 * under 1 % of a core).
 */
const PACER_STEP_MS = 2;
class SenderPacer implements FrameSink {
  readonly clock = new MediaClock({ frameMs: PACER_STEP_MS, slots: 1, deferLateSteps: false });
  private readonly senders = new Set<PacedSender>();
  private subscription: ClockSubscription | undefined;
  /** the first tick's time, from which the grid counts; the clock starts a fresh grid each time it has been idle */
  private gridT0 = -1;

  add(sender: PacedSender): () => void {
    this.senders.add(sender);
    if (this.subscription === undefined) {
      this.subscription = this.clock.add(this);
      this.gridT0 = -1;
    }
    return () => {
      if (!this.senders.delete(sender) || this.senders.size > 0) return;
      this.subscription?.remove();
      this.subscription = undefined;
    };
  }

  onFrame(): void {
    const now = performance.now();
    if (this.gridT0 < 0) this.gridT0 = now;
    const tick = this.gridT0 + Math.round((now - this.gridT0) / PACER_STEP_MS) * PACER_STEP_MS;
    for (const s of this.senders) s.sendDue(tick, now);
  }
}
const pacer = new SenderPacer();

/** Sends what is due of both kinds, from inside a batch of I/O (MediaClock.poll): the senders' time, not the batch's end. */
function pollClocks(): void {
  pacer.clock.poll();
  botClock.poll();
}

/**
 * One call's caller audio as its Talkdesk side sends it: the speech pattern, on a sender profile's schedule. Steady
 * until the measurement window opens, then the call's profile from its start (`switchTo`), so that every window sees
 * the profile's events (its first burst or pause 2 s in) however long the calls took to set up.
 */
class CallerStream {
  private schedule = senderSchedule('steady');
  private nextChunk: Chunk | undefined = this.schedule.next().value ?? undefined;
  /** performance.now() the current schedule's times count from; -1 before the first tick */
  private t0 = -1;
  /** audio bytes sent before the current schedule began */
  private base = 0;
  private pending: SenderProfile | undefined;
  private chunkNo = 0;

  constructor(
    private readonly n: number,
    private readonly toBot: Direction,
    private readonly send: (chunkNo: number, audioMs: number, payload: string) => void,
  ) {}

  /** From the next chunk on, send as `profile` does, from its start. */
  switchTo(profile: SenderProfile): void {
    this.pending = profile;
  }

  sendDue(tick: number, now: number): void {
    if (this.t0 < 0) this.t0 = tick;
    for (let c = this.nextChunk; c !== undefined && c.atMs <= tick - this.t0 + PACER_STEP_MS / 2; c = this.nextChunk) {
      if (this.pending !== undefined) {
        // the new schedule starts where and when this chunk would have gone
        this.t0 += c.atMs;
        this.base += c.offset;
        this.schedule = senderSchedule(this.pending, { seed: this.n });
        this.pending = undefined;
      } else {
        if (recording) histograms.sendLateness.record(now - (this.t0 + c.atMs));
        this.sendChunk(c, now);
      }
      this.nextChunk = this.schedule.next().value ?? undefined;
    }
  }

  private sendChunk(c: Chunk, now: number): void {
    const origin = this.t0 + c.nominalMs;
    const first = (this.base + c.offset) / FRAME_BYTES;
    const pieces = c.bytes / FRAME_BYTES;
    let payload: string;
    if (pieces === 1) payload = this.isSpeech(first) ? speechFrameBase64(this.toBot.sent(now, origin)) : SILENT_FRAME_BASE64;
    else {
      const buf = Buffer.alloc(c.bytes, SILENCE);
      // piece i cannot leave before origin + i·20 ms at 20 ms pacing: its delay counts from then, not from the frame
      for (let i = 0; i < pieces; i++) {
        if (this.isSpeech(first + i)) writeSpeechFrame(buf, i * FRAME_BYTES, this.toBot.sent(now, origin + i * 20));
      }
      payload = buf.toString('base64');
    }
    this.send(++this.chunkNo, (this.base + c.offset) / 8, payload);
  }

  private isSpeech(frame: number): boolean {
    // each call from its own place in the utterance, so that not all calls pause at once
    return speechPattern[(frame + this.n * 97) % speechPattern.length] === 1;
  }
}

/**
 * The window's latency each way and lateness at the bots, over all calls: histograms, so that reading them at the
 * window's end sorts nothing. A report that blocked this event loop for a second stalled every call's frames, and
 * the burst after it was measured in the next window as the plugin's overflow and loss.
 */
const windowHistograms = (): { toBot: LatencyHistogram; toTalkdesk: LatencyHistogram; lateness: LatencyHistogram; sendLateness: LatencyHistogram } => ({
  // a jittered frame may leave up to 40 ms before its nominal time: if the plugin passed it on at once, say so
  toBot: new LatencyHistogram(-100, 2000, 0.1),
  toTalkdesk: new LatencyHistogram(0, 2000, 0.1),
  lateness: new LatencyHistogram(0, 2000, 0.1),
  // how late the callers' chunks left against their schedule: the load generator's own lateness, in the caller delay
  sendLateness: new LatencyHistogram(-2, 2000, 0.1),
});
let histograms = windowHistograms();
/** Frames are measured from window-start until window-report starts reading. */
let recording = false;

/** One direction of one call: each marked frame's nominal time, and whether it arrived. */
class Direction {
  private readonly originAt = new Float64Array(RING);
  private readonly sentIdx = new Int32Array(RING).fill(-1);
  private readonly recvd = new Uint8Array(RING);
  next = 0;
  /** the window's frames: [winStart, winEnd) */
  private winStart = -1;
  private winEnd = Infinity;
  constructor(private readonly which: 'toBot' | 'toTalkdesk') {}

  /** A marked frame goes now; `origin` is the time its delay counts from (its nominal time). */
  sent(now: number, origin = now): number {
    const idx = this.next++;
    const slot = idx % RING;
    this.originAt[slot] = origin;
    this.sentIdx[slot] = idx;
    this.recvd[slot] = 0;
    return idx;
  }

  received(idx: number, t: number): void {
    const slot = idx % RING;
    if (this.sentIdx[slot] !== idx || this.recvd[slot] === 1) return;
    this.recvd[slot] = 1;
    if (recording && this.winStart >= 0 && idx >= this.winStart && idx < this.winEnd) histograms[this.which].record(t - this.originAt[slot]!);
  }

  /** the window's frames, and how many of them arrived */
  count(): { sent: number; received: number } {
    let sent = 0;
    let received = 0;
    if (this.winStart < 0) return { sent, received };
    for (let idx = Math.max(this.winStart, this.next - RING); idx < Math.min(this.winEnd, this.next); idx++) {
      if (this.sentIdx[idx % RING] !== idx) continue;
      sent++;
      received += this.recvd[idx % RING]!;
    }
    return { sent, received };
  }

  openWindow(): void {
    this.winStart = this.next;
    this.winEnd = Infinity;
  }

  closeWindow(): void {
    this.winEnd = this.next;
  }
}

type Failure = string;

class BenchCall implements PacedSender {
  readonly callSid: string;
  readonly toBot = new Direction('toBot');
  readonly toTalkdesk = new Direction('toTalkdesk');
  private ws: WebSocket | undefined;
  private rtp: Socket | undefined;
  private rtpPort = 0;
  /** where the bot's RTP goes: the plugin's (or floor's) port */
  private peerRtpPort = 0;
  private botSending = false;
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private seq = 0;
  private ts = 0;
  private removeTalkdeskSink: (() => void) | undefined;
  private removeBotSink: (() => void) | undefined;
  private tdSeq = 0;
  private readonly caller: CallerStream;
  private readonly streamSid: string;
  // SIP dialog
  invite: { msg: IncomingMessage; from: RemoteInfo; okRaw: string } | undefined;
  private byeCseq = 1;
  // what the window measures at the bot
  /** ts0: the window's first RTP timestamp; lastFrame: the latest packet's 20 ms frame counted from it */
  win = { open: false, rtpIn: 0, rtpOut: 0, silence: 0, ts0: -1, lastFrame: 0, offsets: [] as number[] };
  // setup and end
  private upResolve!: (failure: Failure | undefined) => void;
  readonly up = new Promise<Failure | undefined>((r) => (this.upResolve = r));
  private gotRtp = false;
  private gotMedia = false;
  private isUp = false;
  end = {
    botByeAt: 0,
    tdStopAt: 0,
    stopReceivedAt: 0,
    wsClosedAt: 0,
    byeReceivedAt: 0,
    byeAnsweredAt: 0,
    framesAfterBye: 0,
    lastFrameAfterBye: 0,
    unexpected: '' as string,
  };
  private endedResolve!: () => void;
  readonly ended = new Promise<void>((r) => (this.endedResolve = r));

  constructor(
    readonly n: number,
    readonly target: Target,
    private readonly sender: SenderProfile,
    private readonly uas: Uas,
  ) {
    this.callSid = `bench-${n}`;
    this.streamSid = `MZbench${n}`;
    this.caller = new CallerStream(n, this.toBot, (chunk, audioMs, payload) =>
      this.ws!.send(
        `{"event":"media","sequenceNumber":"${++this.tdSeq}","media":{"track":"inbound","chunk":"${chunk}","timestamp":"${audioMs}","payload":"${payload}"},"streamSid":"${this.streamSid}"}`,
      ),
    );
  }

  async start(): Promise<void> {
    const rtp = createSocket('udp4');
    this.rtp = rtp;
    await new Promise<void>((resolve) => rtp.bind(0, HOST, () => resolve()));
    rtp.on('message', (msg) => {
      this.onRtp(msg, performance.now());
      pollClocks();
    });
    this.rtpPort = rtp.address().port;
    const timer = setTimeout(() => this.fail('setup-timeout'), SETUP_TIMEOUT_MS);
    void this.up.then(() => clearTimeout(timer));

    const url =
      this.target.kind === 'plugin'
        ? talkdeskUrl({
            port: this.target.wsPort,
            sipuri: `+1555${String(this.n).padStart(7, '0')}`,
            token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret),
            botId: EXAMPLE_BOT.botId,
            accountId: '0123456789abcdef01234567',
            agentassist: false,
            trailingSlash: true,
          })
        : `ws://${HOST}:${this.target.wsPort}/?botRtp=${this.rtpPort}&sid=${this.streamSid}`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => this.fail(`upgrade-${res.statusCode ?? 0}`));
    ws.on('message', (data) => {
      this.onTalkdesk(data as Buffer, performance.now());
      pollClocks();
    });
    ws.once('close', () => {
      this.end.wsClosedAt = performance.now();
      this.removeTalkdeskSink?.();
      if (!this.isUp) this.fail('ws-closed-before-up');
      else if (this.end.botByeAt === 0 && this.end.tdStopAt === 0 && !this.end.unexpected) this.end.unexpected = 'ws-closed';
      this.checkEnded();
    });
    ws.once('open', () => {
      if (this.target.kind === 'plugin') {
        this.sendJson({ event: 'connected', protocol: 'Call', version: '1.0.0' });
        this.sendJson({
          event: 'start',
          sequenceNumber: String(++this.tdSeq),
          start: {
            streamSid: this.streamSid,
            accountSid: 'td-account-bench',
            callSid: this.callSid,
            tracks: ['inbound'],
            customParameters: { interaction_id: `i-${this.n}`, account_id: 'td-account-bench' },
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          },
          streamSid: this.streamSid,
        });
      }
      this.removeTalkdeskSink = pacer.add(this);
    });
  }

  private sendJson(frame: object): void {
    this.ws!.send(JSON.stringify(frame));
  }

  /** The Talkdesk sender: what is due of the caller's audio, while the socket is open and Talkdesk has not hung up. */
  sendDue(tick: number, now: number): void {
    if (this.ws?.readyState === WebSocket.OPEN && this.end.tdStopAt === 0) this.caller.sendDue(tick, now);
  }

  /** What the plugin sends Talkdesk: media on a fast path (find the payload, decode its 8 marker characters). */
  private onTalkdesk(data: Buffer, t: number): void {
    const text = data.toString();
    if (text.startsWith('{"event":"media"')) {
      const at = text.indexOf('"payload":"');
      if (at < 0) return;
      const idx = readMarker(Buffer.from(text.slice(at + 11, at + 19), 'base64'), 0);
      if (idx >= 0) this.toTalkdesk.received(idx, t);
      if (this.end.botByeAt > 0) {
        this.end.framesAfterBye++;
        this.end.lastFrameAfterBye = t;
      }
      if (!this.gotMedia) {
        this.gotMedia = true;
        this.checkUp();
      }
      return;
    }
    let msg: { event?: string; mark?: unknown; rtpPort?: number };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    switch (msg.event) {
      case 'floor':
        this.peerRtpPort = msg.rtpPort!;
        this.startBotAudio();
        return;
      case 'mark':
        // Talkdesk echoes a mark once what came before it has played: at once here
        this.sendJson({ event: 'mark', sequenceNumber: String(++this.tdSeq), streamSid: this.streamSid, mark: msg.mark });
        return;
      case 'stop':
        this.end.stopReceivedAt = t;
        if (this.end.botByeAt === 0 && this.end.tdStopAt === 0 && !this.end.unexpected) this.end.unexpected = `stop-${JSON.stringify(msg)}`;
        this.ws?.close(1000);
        return;
    }
  }

  // ---- bot leg ----

  onInvite(msg: IncomingMessage, from: RemoteInfo): void {
    if (this.invite !== undefined) {
      this.uas.send(this.invite.okRaw, from.port); // retransmitted INVITE: our 200 again
      return;
    }
    // RTCP muxed onto our RTP port (RFC 5761), where onRtp leaves it: not to port + 1, which may be another call's
    const okRaw = this.uas.reply(msg, from.port, 200, 'OK', botSdp(this.rtpPort, 101, 'sendrecv', ['a=rtcp-mux']));
    this.invite = { msg, from, okRaw };
    this.peerRtpPort = offeredPort({ message: msg, raw: '', at: 0 });
    this.startBotAudio();
  }

  private startBotAudio(): void {
    if (this.botSending) return;
    this.botSending = true;
    this.removeBotSink = botClock.add({ onFrame: () => this.sendRtp() }).remove;
  }

  private sendRtp(): void {
    if (!this.botSending) return;
    const t = performance.now();
    const pkt = Buffer.allocUnsafe(12 + FRAME_BYTES);
    pkt[0] = 0x80;
    pkt[1] = 0;
    pkt.writeUInt16BE(this.seq, 2);
    pkt.writeUInt32BE(this.ts, 4);
    pkt.writeUInt32BE(this.ssrc, 8);
    writeSpeechFrame(pkt, 12, this.toTalkdesk.sent(t));
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME_BYTES) >>> 0;
    this.rtp!.send(pkt, this.peerRtpPort, HOST);
    if (this.win.open) this.win.rtpOut++;
  }

  private onRtp(msg: Buffer, t: number): void {
    // RTCP (muxed: our answer says a=rtcp-mux) is not audio
    if (msg.length < 12 + 6 || isRtcp(msg)) return;
    let idx = readMarker(msg, 12);
    if (idx < 0) {
      // not at the frame's start: look further in (the plugin re-chunks caller audio; it should stay aligned)
      for (let o = 13; o < msg.length - 5 && idx < 0; o++) idx = readMarker(msg, o);
    }
    const w = this.win;
    if (w.open) {
      w.rtpIn++;
      if (idx < 0) w.silence++;
      const ts = msg.readUInt32BE(4);
      if (w.ts0 < 0) w.ts0 = ts;
      const frame = ((ts - w.ts0) >>> 0) / FRAME_BYTES;
      // a reordered packet from before ts0 wraps to ~2^32
      if (frame > w.lastFrame && frame < 2 ** 31 / FRAME_BYTES) w.lastFrame = frame;
      w.offsets.push(t - frame * 20);
    }
    if (idx >= 0) this.toBot.received(idx, t);
    if (!this.gotRtp) {
      this.gotRtp = true;
      this.checkUp();
    }
  }

  onBye(msg: IncomingMessage, from: RemoteInfo): void {
    this.uas.reply(msg, from.port, 200, 'OK');
    if (this.end.byeReceivedAt === 0) this.end.byeReceivedAt = performance.now();
    if (this.end.botByeAt === 0 && this.end.tdStopAt === 0 && !this.end.unexpected) this.end.unexpected = `bye-${msg.sip.get('x-reason') ?? ''}`;
    this.stopBotAudio();
    this.checkEnded();
  }

  onByeAnswered(): void {
    if (this.end.byeAnsweredAt === 0) this.end.byeAnsweredAt = performance.now();
    this.checkEnded();
  }

  private stopBotAudio(): void {
    this.botSending = false;
    this.removeBotSink?.();
  }

  private checkUp(): void {
    if (!this.isUp && this.gotRtp && this.gotMedia) {
      this.isUp = true;
      this.upResolve(undefined);
    }
  }

  private fail(why: Failure): void {
    if (this.isUp) return;
    this.isUp = true;
    this.upResolve(why);
    this.close();
  }

  openWindow(): void {
    this.toBot.openWindow();
    this.toTalkdesk.openWindow();
    this.caller.switchTo(this.sender);
    this.win = { open: true, rtpIn: 0, rtpOut: 0, silence: 0, ts0: -1, lastFrame: 0, offsets: [] };
  }

  closeWindow(): void {
    this.win.open = false;
    this.toBot.closeWindow();
    this.toTalkdesk.closeWindow();
  }

  /** The bot hangs up: its audio stops, then the BYE. */
  botHangup(): void {
    this.stopBotAudio();
    this.end.botByeAt = performance.now();
    if (this.invite === undefined) {
      // floor: no SIP, the bot leg just stops; Talkdesk closes
      this.end.byeAnsweredAt = this.end.botByeAt;
      this.ws?.close(1000);
      return;
    }
    this.uas.sendBye(this, ++this.byeCseq);
  }

  /** Talkdesk hangs up: stop, then close. */
  talkdeskHangup(): void {
    this.end.tdStopAt = performance.now();
    this.removeTalkdeskSink?.();
    if (this.ws?.readyState === WebSocket.OPEN && this.target.kind === 'plugin') {
      this.sendJson({ event: 'stop', sequenceNumber: String(++this.tdSeq), stop: { accountSid: 'td-account-bench', callSid: this.callSid }, streamSid: this.streamSid });
    }
    setTimeout(() => this.ws?.close(1000), 100);
    if (this.invite === undefined) {
      this.stopBotAudio();
      this.end.byeReceivedAt = this.end.tdStopAt;
    }
  }

  private checkEnded(): void {
    const sipDone = this.invite === undefined || this.end.byeReceivedAt > 0 || this.end.byeAnsweredAt > 0;
    if (this.end.wsClosedAt > 0 && sipDone) this.close();
  }

  close(): void {
    this.stopBotAudio();
    this.removeTalkdeskSink?.();
    if (this.ws && this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    if (this.rtp) {
      const rtp = this.rtp;
      this.rtp = undefined;
      rtp.close();
    }
    this.uas.forget(this);
    this.endedResolve();
  }
}

/** One SIP socket answering for every bot leg: INVITE → 200 with the leg's SDP, BYE → 200, our BYE retried. */
class Uas {
  private readonly socket = createSocket('udp4');
  private readonly byCallSid = new Map<string, BenchCall>();
  private readonly byCallId = new Map<string, BenchCall>();
  private readonly tag = randomBytes(4).toString('hex');
  private readonly byeRetries = new Map<string, NodeJS.Timeout>();
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, HOST, () => resolve()));
    this.port = this.socket.address().port;
    this.socket.on('message', (data, rinfo) => this.onMessage(data, rinfo));
  }

  expect(call: BenchCall): void {
    this.byCallSid.set(call.callSid, call);
  }

  forget(call: BenchCall): void {
    this.byCallSid.delete(call.callSid);
    if (call.invite) {
      this.byCallId.delete(call.invite.msg.callId);
      clearTimeout(this.byeRetries.get(call.invite.msg.callId));
      this.byeRetries.delete(call.invite.msg.callId);
    }
  }

  private onMessage(data: Buffer, rinfo: RemoteInfo): void {
    const parsed = parseSipMessage(data);
    if (!parsed.ok) return;
    const msg = parsed.message;
    const method = msg.sip.method;
    if (method === 'INVITE') {
      const call = this.byCallId.get(msg.callId) ?? this.byCallSid.get(msg.sip.get('x-talkdesk-call-sid') ?? '');
      if (call === undefined) {
        this.reply(msg, rinfo.port, 404, 'Not Found');
        return;
      }
      this.byCallId.set(msg.callId, call);
      call.onInvite(msg, rinfo);
    } else if (method === 'BYE') {
      const call = this.byCallId.get(msg.callId);
      if (call) call.onBye(msg, rinfo);
      else this.reply(msg, rinfo.port, 481, 'Call/Transaction Does Not Exist');
    } else if (method === 'ACK') {
      return;
    } else if (method !== undefined) {
      this.reply(msg, rinfo.port, 200, 'OK');
    } else if (msg.cseq.method === 'BYE') {
      clearTimeout(this.byeRetries.get(msg.callId));
      this.byeRetries.delete(msg.callId);
      this.byCallId.get(msg.callId)?.onByeAnswered();
    }
  }

  reply(request: IncomingMessage, port: number, status: number, reason: string, body = ''): string {
    const { sip } = request;
    const to = request.toTag ? sip.get('to')! : `${sip.get('to')!};tag=${this.tag}`;
    const raw = [
      `SIP/2.0 ${status} ${reason}`,
      `Via: ${sip.get('via')!}`,
      `From: ${sip.get('from')!}`,
      `To: ${to}`,
      `Call-ID: ${request.callId}`,
      `CSeq: ${sip.get('cseq')!}`,
      `Contact: <sip:bot@${HOST}:${this.port};transport=udp>`,
      ...(body ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    this.send(raw, port);
    return raw;
  }

  sendBye(call: BenchCall, cseq: number): void {
    const { msg, from } = call.invite!;
    const { sip } = msg;
    const contact = /<([^>]+)>/.exec(sip.get('contact')!)![1]!;
    const raw = [
      `BYE ${contact} SIP/2.0`,
      `Via: SIP/2.0/UDP ${HOST}:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')}`,
      `From: ${sip.get('to')!};tag=${this.tag}`,
      `To: ${sip.get('from')!}`,
      `Call-ID: ${msg.callId}`,
      `CSeq: ${cseq} BYE`,
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    let wait = 500;
    const send = (): void => {
      this.send(raw, from.port);
      if (wait > 4000) return;
      this.byeRetries.set(msg.callId, setTimeout(send, wait));
      wait *= 2;
    };
    send();
  }

  send(raw: string, port: number): void {
    this.socket.send(raw, port, HOST);
  }
}

// ---- the process ----

const uas = new Uas();
const live = new Set<BenchCall>();
let callCounter = 0;
let windowAt = 0;
let windowCpu = process.cpuUsage();
/** What window-end froze: the window's calls, length and the load generator's own CPU and loop delay in it. */
let closed = { calls: [] as BenchCall[], seconds: 0, cpu: process.cpuUsage(), loopDelayP99Ms: 0, loopDelayMaxMs: 0, gc: { count: 0, maxMs: 0 } };
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
/** The load generator's own GC pauses in the window: a long one holds every caller's next frame back at once. */
let gc = { count: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    if (e.duration > gc.maxMs) gc.maxMs = e.duration;
  }
}).observe({ entryTypes: ['gc'] });

async function startCall(target: Target, sender: SenderProfile): Promise<{ call: BenchCall; failure: Failure | undefined }> {
  const call = new BenchCall(++callCounter, target, sender, uas);
  uas.expect(call);
  live.add(call);
  void call.ended.then(() => live.delete(call));
  await call.start();
  return { call, failure: await call.up };
}

async function startCalls(cmd: StartCalls): Promise<StartReport> {
  const t0 = performance.now();
  const pending: Array<Promise<{ failure: Failure | undefined }>> = [];
  for (let i = 0; i < cmd.n; i++) {
    const wait = t0 + (i * 1000) / cmd.rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(startCall(cmd.target, cmd.sender));
  }
  const results = await Promise.all(pending);
  const failures: Record<string, number> = {};
  for (const { failure } of results) if (failure !== undefined) failures[failure] = (failures[failure] ?? 0) + 1;
  const failed = results.filter((r) => r.failure !== undefined).length;
  return { requested: cmd.n, up: cmd.n - failed, failed, failures, seconds: round((performance.now() - t0) / 1000) };
}

function windowStart(): void {
  windowAt = performance.now();
  windowCpu = process.cpuUsage();
  loopDelay.reset();
  gc = { count: 0, maxMs: 0 };
  histograms = windowHistograms();
  recording = true;
  for (const call of live) call.openWindow();
}

function windowEnd(): void {
  const now = performance.now();
  closed = {
    calls: [...live],
    seconds: (now - windowAt) / 1000,
    cpu: process.cpuUsage(windowCpu),
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    loopDelayMaxMs: loopDelay.max / 1e6,
    gc,
  };
  for (const call of closed.calls) call.closeWindow();
}

/** Packets each side of a candidate step; a median of 9 ignores a stall that delays up to four packets. */
const STEP_K = 9;
/** The plugin moves a call's frames in whole 2 ms clock steps (its playout phase adaptation); half of one is noise. */
const STEP_MIN_MS = 1.5;

/**
 * Splits one call's arrival-grid offsets where the plugin moved its frames: the running median steps by at least
 * STEP_MIN_MS and stays there. Each piece is on an ideal 20 ms grid of its own, so lateness and drift are measured
 * within pieces, and the steps are reported as phase shifts, not as lateness or drift.
 */
function phaseSegments(offsets: number[]): { pieces: Array<[number, number]>; netShiftMs: number } {
  const pieces: Array<[number, number]> = [];
  let from = 0;
  let netShiftMs = 0;
  const scratch = new Float64Array(STEP_K);
  // no slice per index: this runs ~2,000 times a call while the calls go on, and the load generator's stall here
  // (tens of ms at 200 calls) made every caller late together right after the window
  const medianAt = (from: number): number => {
    for (let j = 0; j < STEP_K; j++) scratch[j] = offsets[from + j]!;
    return scratch.sort()[STEP_K >> 1]!;
  };
  for (let i = STEP_K; i + STEP_K <= offsets.length; i++) {
    const before = medianAt(i - STEP_K);
    const after = medianAt(i);
    if (Math.abs(after - before) < STEP_MIN_MS) continue;
    // the medians flip once most of the STEP_K after i are at the new level: the step itself is STEP_K / 2 further on
    const at = Math.min(i + Math.floor(STEP_K / 2), offsets.length);
    pieces.push([from, at]);
    netShiftMs += median(offsets.slice(at, at + STEP_K)) - median(offsets.slice(Math.max(from, at - STEP_K), at));
    from = at;
    i = at + STEP_K - 1;
  }
  pieces.push([from, offsets.length]);
  return { pieces, netShiftMs };
}

async function windowReport(): Promise<WindowReport> {
  const { calls, seconds, cpu } = closed;
  const count = (pick: (c: BenchCall) => Direction): { sent: number; received: number } => {
    let sent = 0;
    let received = 0;
    for (const call of calls) {
      const c = pick(call).count();
      sent += c.sent;
      received += c.received;
    }
    return { sent, received };
  };
  // frames the playout buffer still holds (a burst's worth and more) are late, not lost: wait for them a while
  const drainUntil = performance.now() + DRAIN_MAX_MS;
  while (performance.now() < drainUntil) {
    const toBot = count((c) => c.toBot);
    const toTalkdesk = count((c) => c.toTalkdesk);
    if (toBot.received === toBot.sent && toTalkdesk.received === toTalkdesk.sent) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  recording = false;
  const dir = (pick: (c: BenchCall) => Direction, h: LatencyHistogram): DirectionReport => {
    const { sent, received } = count(pick);
    return { sent, received, lost: sent - received, latency: histogramPercentiles(h) };
  };
  let rtpIn = 0;
  let rtpOut = 0;
  const rtpByTarget = { plugin: 0, floor: 0 };
  let silence = 0;
  let driftMax = 0;
  let countErrMax = 0;
  let phaseShifts = 0;
  for (let i = 0; i < calls.length; i++) {
    // the calls go on while this runs (a few ms a call): let their frames out between calls
    if (i > 0) await new Promise((r) => setImmediate(r));
    const call = calls[i]!;
    const w = call.win;
    rtpIn += w.rtpIn;
    rtpOut += w.rtpOut;
    rtpByTarget[call.target.kind] += w.rtpIn + w.rtpOut;
    silence += w.silence;
    if (w.offsets.length === 0) continue;
    const { pieces, netShiftMs } = phaseSegments(w.offsets);
    phaseShifts += pieces.length - 1;
    let drift = 0;
    for (const [from, to] of pieces) {
      const piece = w.offsets.slice(from, to);
      let min = Infinity;
      for (const o of piece) if (o < min) min = o;
      for (const o of piece) histograms.lateness.record(o - min);
      const second = Math.min(50, Math.floor(piece.length / 2));
      if (second >= 10) drift += median(piece.slice(-second)) - median(piece.slice(0, second));
    }
    driftMax = Math.max(driftMax, Math.abs(drift));
    countErrMax = Math.max(countErrMax, Math.abs(packetCountError(w.offsets, w.lastFrame, netShiftMs, STEP_K)));
  }
  return {
    seconds: round(seconds),
    calls: calls.length,
    toBot: dir((c) => c.toBot, histograms.toBot),
    toTalkdesk: dir((c) => c.toTalkdesk, histograms.toTalkdesk),
    rtpIn,
    rtpOut,
    rtpByTarget,
    silencePackets: silence,
    lateness: histogramPercentiles(histograms.lateness),
    driftMaxMs: round(driftMax),
    phaseShifts,
    packetCountErrorMax: round(countErrMax, 1),
    loadgen: {
      cpuPercent: round(((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100, 1),
      loopDelayP99Ms: round(closed.loopDelayP99Ms),
      loopDelayMaxMs: round(closed.loopDelayMaxMs),
      callerSendLateness: histogramPercentiles(histograms.sendLateness),
      gcs: closed.gc.count,
      gcMaxMs: round(closed.gc.maxMs),
    },
  };
}

function endReport(calls: BenchCall[]): EndReport {
  const byeToStop: number[] = [];
  const byeToClose: number[] = [];
  const stopToBye: number[] = [];
  const stale: number[] = [];
  let staleFramesMax = 0;
  let slowEnds = 0;
  let neverEnded = 0;
  let botEnded = 0;
  for (const c of calls) {
    const e = c.end;
    const floor = c.target.kind === 'floor';
    if (e.botByeAt > 0) {
      botEnded++;
      if (!floor) {
        if (e.stopReceivedAt > 0) byeToStop.push(e.stopReceivedAt - e.botByeAt);
        if (e.wsClosedAt > 0) byeToClose.push(e.wsClosedAt - e.botByeAt);
        if (e.stopReceivedAt === 0 || e.wsClosedAt === 0) neverEnded++;
        else if (e.stopReceivedAt - e.botByeAt > 1000) slowEnds++;
      }
      stale.push(e.framesAfterBye > 0 ? e.lastFrameAfterBye - e.botByeAt : 0);
      staleFramesMax = Math.max(staleFramesMax, e.framesAfterBye);
    } else if (e.tdStopAt > 0 && !floor) {
      if (e.byeReceivedAt > 0) {
        stopToBye.push(e.byeReceivedAt - e.tdStopAt);
        if (e.byeReceivedAt - e.tdStopAt > 1000) slowEnds++;
      } else neverEnded++;
    }
  }
  return {
    calls: calls.length,
    botEnded,
    talkdeskEnded: calls.length - botEnded,
    byeToStop: percentiles(byeToStop),
    byeToClose: percentiles(byeToClose),
    stopToBye: percentiles(stopToBye),
    staleAfterByeMs: percentiles(stale),
    staleFramesMax,
    slowEnds,
    neverEnded,
  };
}

async function endCalls(calls: BenchCall[], botEnds: 'half' | 'all' | 'none'): Promise<EndReport> {
  let i = 0;
  for (const call of calls) {
    const byBot = botEnds === 'all' || (botEnds === 'half' && i++ % 2 === 0);
    if (byBot) call.botHangup();
    else call.talkdeskHangup();
  }
  await Promise.all(calls.map((c) => Promise.race([c.ended, new Promise((r) => setTimeout(r, END_TIMEOUT_MS))])));
  const report = endReport(calls);
  for (const c of calls) c.close();
  return report;
}

async function churn(cmd: Churn): Promise<{ requested: number; started: number; answered: number; failed: number; failures: Record<string, number>; ends: EndReport; seconds: number }> {
  const t0 = performance.now();
  const target: Target = { kind: 'plugin', wsPort: cmd.wsPort };
  const failures: Record<string, number> = {};
  const done: BenchCall[] = [];
  const running: Array<Promise<void>> = [];
  let answered = 0;
  for (let i = 0; i < cmd.count; i++) {
    const wait = t0 + (i * 1000) / cmd.rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    running.push(
      (async () => {
        // churned calls never open a window: they stay steady
        const { call, failure } = await startCall(target, 'steady');
        if (failure !== undefined) {
          failures[failure] = (failures[failure] ?? 0) + 1;
          return;
        }
        answered++;
        if (answered % cmd.progressEvery === 0) process.send!({ churnProgress: { answered } } satisfies ChurnProgress);
        await new Promise((r) => setTimeout(r, cmd.holdMs));
        if (i % 2 === 0) call.botHangup();
        else call.talkdeskHangup();
        await Promise.race([call.ended, new Promise((r) => setTimeout(r, END_TIMEOUT_MS))]);
        done.push(call);
        call.close();
      })(),
    );
  }
  await Promise.all(running);
  return {
    requested: cmd.count,
    started: cmd.count,
    answered,
    failed: cmd.count - answered,
    failures,
    ends: endReport(done),
    seconds: round((performance.now() - t0) / 1000),
  };
}

async function handle(cmd: Command): Promise<unknown> {
  switch (cmd.op) {
    case 'start-calls':
      return startCalls(cmd);
    case 'window-start':
      windowStart();
      return { calls: live.size };
    case 'window-end':
      windowEnd();
      return {};
    case 'window-report':
      return windowReport();
    case 'end-calls':
      return endCalls([...live], cmd.botEnds);
    case 'churn':
      return churn(cmd);
    case 'exit':
      setTimeout(() => process.exit(0), 10);
      return {};
  }
}

await loadSpeechPattern();
await uas.start();
process.on('message', (cmd: Command) => {
  handle(cmd).then(
    (result) => process.send!({ id: cmd.id, ok: true, result }),
    (err: unknown) => process.send!({ id: cmd.id, ok: false, error: String((err as Error)?.stack ?? err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true, sipPort: uas.port });
