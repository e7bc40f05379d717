import WebSocket from 'ws';

/** What Talkdesk saw of the call, as the probe's caller plays Talkdesk (talkdesk-protocol.md). */
export interface CallerResult {
  /** the `stop` frame the gateway sent, exactly; absent when it sent none (we hung up, or the socket just closed) */
  stop?: Record<string, unknown>;
  /** the bot's audio as Talkdesk got it: every `media` payload, in order */
  botAudio: Buffer;
  /** performance.now() of the first `media` frame from the gateway */
  firstAudioAt?: number;
  mediaFrames: number;
  /** our `mark` echoes (Talkdesk confirms playback with them; the gateway's farewell waits for one) */
  marksEchoed: number;
  /** we sent `stop` (--hangup-after) */
  hungUp: boolean;
  closeCode?: number;
}

const FRAME_BYTES = 160;
const FRAME_MS = 20;
const SILENCE = 0xff;

/**
 * Talkdesk's side of one call for `npm run probe`: connects to the gateway as Studio's Voice Stream would, sends
 * `connected` and `start`, then the caller's audio as 20 ms `media` frames on an absolute schedule (the prompt, then
 * silence, as a phone line does), `dtmf` frames when told, and echoes the gateway's marks. Records what comes back.
 */
export class ProbeCaller {
  private readonly ws: WebSocket;
  private readonly audio: Buffer[] = [];
  private readonly result: CallerResult = { botAudio: Buffer.alloc(0), mediaFrames: 0, marksEchoed: 0, hungUp: false };
  private seq = 0;
  private sentBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly done: Promise<CallerResult>;
  private readonly streamSid = `MZprobe${Date.now()}`;

  constructor(
    url: string,
    private readonly prompt: Buffer,
    private readonly ids: { accountSid: string; callSid: string },
  ) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.done = new Promise((resolve, reject) => {
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`the gateway refused the probe's upgrade: HTTP ${res.statusCode ?? '?'}`)));
      this.ws.once('error', (err) => reject(new Error(`the probe's WebSocket to the gateway failed: ${err.message}`)));
      this.ws.once('close', (code) => {
        this.stopSending();
        this.result.closeCode = code;
        this.result.botAudio = Buffer.concat(this.audio);
        resolve(this.result);
      });
    });
    this.ws.once('open', () => this.begin());
    this.ws.on('message', (data) => this.onFrame(data.toString()));
  }

  /** One key press, as Talkdesk sends it (§2.6). */
  sendDigit(digit: string): void {
    this.send({ event: 'dtmf', streamSid: this.streamSid, sequenceNumber: this.nextSeq(), dtmf: { track: 'inbound_track', digit } });
  }

  /** The caller hangs up: Talkdesk's `stop`; the gateway BYEs the bot and closes. */
  hangUp(): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.result.hungUp = true;
    this.stopSending();
    this.send({ event: 'stop', sequenceNumber: this.nextSeq(), stop: this.ids, streamSid: this.streamSid });
  }

  /** Gives up on the socket (the probe's own deadline). */
  close(): void {
    this.stopSending();
    this.ws.terminate();
  }

  private begin(): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({
      event: 'start',
      sequenceNumber: this.nextSeq(),
      start: {
        streamSid: this.streamSid,
        ...this.ids,
        tracks: ['inbound'],
        customParameters: { interaction_id: `probe-${this.ids.callSid}`, account_id: this.ids.accountSid },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: this.streamSid,
    });
    const t0 = performance.now();
    let frame = 0;
    // frame n goes at t0 + 20n: an absolute schedule, so the caller keeps 50 frames a second however the timer fires
    const tick = (): void => {
      while (t0 + frame * FRAME_MS <= performance.now()) {
        this.sendFrame();
        frame++;
      }
      this.timer = setTimeout(tick, Math.max(1, t0 + frame * FRAME_MS - performance.now()));
    };
    tick();
  }

  private sendFrame(): void {
    const from = this.sentBytes;
    const payload = from < this.prompt.length ? this.prompt.subarray(from, from + FRAME_BYTES) : Buffer.alloc(FRAME_BYTES, SILENCE);
    this.sentBytes += payload.length;
    this.send({
      event: 'media',
      sequenceNumber: this.nextSeq(),
      media: { track: 'inbound', chunk: String(from / FRAME_BYTES + 1), timestamp: String(from / 8), payload: payload.toString('base64') },
      streamSid: this.streamSid,
    });
  }

  private onFrame(text: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (frame.event === 'media') {
      const payload = (frame.media as { payload?: unknown } | undefined)?.payload;
      if (typeof payload !== 'string') return;
      this.result.firstAudioAt ??= performance.now();
      this.result.mediaFrames++;
      this.audio.push(Buffer.from(payload, 'base64'));
    } else if (frame.event === 'mark') {
      this.result.marksEchoed++;
      this.send({ event: 'mark', sequenceNumber: this.nextSeq(), streamSid: this.streamSid, mark: frame.mark });
    } else if (frame.event === 'stop') {
      this.result.stop = frame;
      this.stopSending();
    }
  }

  private stopSending(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private nextSeq(): string {
    return String(++this.seq);
  }

  private send(frame: Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
}
