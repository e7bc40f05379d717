import { createSocket, type Socket } from 'node:dgram';
import { parse, serialize, type ParsedRtpPacket } from 'rtp-packet';
import { isRtcp } from '../../media/rtcp.js';
import { FakeUas, type Received } from '../unit/plugin/sip/fake-uas.js';

/**
 * A bot in plain Node for e2e tests that sipp cannot script: the SIP side is the scripted UAS of the SIP unit tests
 * (FakeUas: answer, BYE, replies by hand), the media side a dgram socket that records every RTP packet it gets and
 * can send paced PCMU of its own, or stop sending, when the test says; and an RTCP socket, announced in its answer
 * with a=rtcp (RFC 3605), unless the answer takes a=rtcp-mux.
 */
export class NodeBot {
  /** every RTP packet received, parsed, with when and from which gateway port (its offer's m= port) it came */
  readonly rtp: Array<ParsedRtpPacket & { at: number; from: number }> = [];
  /** every RTCP datagram received (RFC 5761 §4: told from RTP by its type), on its RTCP or (muxed) its RTP port */
  readonly rtcp: Array<{ pkt: Buffer; on: 'rtp' | 'rtcp'; from: number }> = [];
  private senders = new Set<NodeJS.Timeout>();

  private constructor(
    readonly uas: FakeUas,
    private readonly media: Socket,
    private readonly control: Socket,
  ) {
    media.on('message', (msg, rinfo) => {
      if (isRtcp(msg)) {
        this.rtcp.push({ pkt: msg, on: 'rtp', from: rinfo.port });
        return;
      }
      const pkt = parse(msg);
      if (pkt) this.rtp.push({ ...pkt, at: performance.now(), from: rinfo.port });
    });
    control.on('message', (msg, rinfo) => this.rtcp.push({ pkt: msg, on: 'rtcp', from: rinfo.port }));
  }

  static async start(): Promise<NodeBot> {
    const uas = await FakeUas.start();
    const bind = async (): Promise<Socket> => {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
      return socket;
    };
    return new NodeBot(uas, await bind(), await bind());
  }

  /** where CCAI_SIP_PORT must point */
  get sipPort(): number {
    return this.uas.port;
  }

  get rtpPort(): number {
    return this.media.address().port;
  }

  get rtcpPort(): number {
    return this.control.address().port;
  }

  /**
   * 200 OK with our SDP: PCMU, telephone-event on `dtmfPayloadType` unless null, the given direction, and RTCP on our
   * RTCP port (a=rtcp) or, with `rtcpMux`, on the RTP port.
   */
  answer(invite: Received, opts: { dtmfPayloadType?: number | null; direction?: string; rtcpMux?: boolean } = {}): void {
    const rtcp = opts.rtcpMux ? 'a=rtcp-mux' : `a=rtcp:${this.rtcpPort}`;
    this.uas.reply(invite, 200, 'OK', {
      body: botSdp(this.rtpPort, opts.dtmfPayloadType === undefined ? 101 : opts.dtmfPayloadType, opts.direction ?? 'sendrecv', [rtcp]),
    });
  }

  /** One RTCP datagram to the gateway, from our RTCP port (or, muxed, from the RTP one). */
  sendRtcp(pkt: Buffer, toPort: number, from: 'rtp' | 'rtcp' = 'rtcp'): Promise<void> {
    return new Promise((resolve) => (from === 'rtp' ? this.media : this.control).send(pkt, toPort, '127.0.0.1', () => resolve()));
  }

  /** Sends `frames` PCMU packets of `fill`, one per 20 ms, to the gateway's RTP port; resolves after the last. */
  sendAudio(toPort: number, frames: number, fill = 0x42, ssrc = 0xb0b): Promise<void> {
    return new Promise((resolve) => {
      let n = 0;
      const timer = setInterval(() => {
        if (n === frames) {
          clearInterval(timer);
          this.senders.delete(timer);
          resolve();
          return;
        }
        const pkt = serialize({ payloadType: 0, sequenceNumber: n, timestamp: n * 160, ssrc, payload: Buffer.alloc(160, fill) });
        this.media.send(pkt, toPort, '127.0.0.1');
        n++;
      }, 20);
      this.senders.add(timer);
    });
  }

  async close(): Promise<void> {
    for (const timer of this.senders) clearInterval(timer);
    await this.uas.close();
    await new Promise<void>((resolve) => this.media.close(() => resolve()));
    await new Promise<void>((resolve) => this.control.close(() => resolve()));
  }
}

export function botSdp(port: number, dtmfPayloadType: number | null, direction = 'sendrecv', attributes: string[] = []): string {
  const pts = dtmfPayloadType === null ? '0' : `0 ${dtmfPayloadType}`;
  return [
    'v=0', 'o=bot 1 1 IN IP4 127.0.0.1', 's=bot', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${port} RTP/AVP ${pts}`, 'a=rtpmap:0 PCMU/8000',
    ...(dtmfPayloadType === null ? [] : [`a=rtpmap:${dtmfPayloadType} telephone-event/8000`]),
    `a=${direction}`, ...attributes, '',
  ].join('\r\n');
}

/** The RTP port the gateway offered in its INVITE. */
export function offeredPort(invite: Received): number {
  return Number(/^m=audio (\d+) /m.exec(invite.message.sip.body)![1]);
}
