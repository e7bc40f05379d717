import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { BotReceived, FakeDrachtio } from './fake-drachtio.js';

/**
 * A bot behind the fake drachtio-server with real RTP: it answers the gateway's INVITE with an SDP pointing at its
 * own UDP socket, sends 20 ms PCMU packets to the port the offer named, and counts what the gateway sends it. No
 * sipp, so no fixed SIP or media port: tests that only need "a call with audio both ways" can run beside others.
 */
export class DrachtioBot {
  /** RTP packets the gateway sent the bot */
  rtpReceived = 0;
  private sender: NodeJS.Timeout | undefined;
  private seq = 1000;
  private timestamp = 160_000;

  private constructor(
    private readonly drachtio: FakeDrachtio,
    readonly invite: BotReceived,
    private readonly rtp: Socket,
  ) {
    rtp.on('message', () => this.rtpReceived++);
  }

  /** Waits for the next INVITE, answers 200 with SDP, waits for the ACK and starts sending audio. */
  static async answerNext(drachtio: FakeDrachtio, timeoutMs = 5_000): Promise<DrachtioBot> {
    const invite = await drachtio.next('INVITE', timeoutMs);
    const rtp = createSocket('udp4');
    rtp.bind(0, '127.0.0.1');
    await once(rtp, 'listening');
    const bot = new DrachtioBot(drachtio, invite, rtp);
    const answer = [
      'v=0', 'o=bot 1 1 IN IP4 127.0.0.1', 's=bot', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio ${rtp.address().port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', '',
    ].join('\r\n');
    drachtio.respond(invite, 200, 'OK', { body: answer, headers: { 'Content-Type': 'application/sdp' } });
    await drachtio.next('ACK', timeoutMs);
    const port = Number(/^m=audio (\d+)/m.exec(invite.sip.body)?.[1]);
    bot.sender = setInterval(() => bot.sendFrame(port), 20);
    return bot;
  }

  /** The bot hangs up: a BYE in its dialog (headers e.g. escalation data). Its audio stops first. */
  bye(headers: Record<string, string> = {}): void {
    this.stopAudio();
    this.drachtio.request(this.invite, 'BYE', { headers });
  }

  stopAudio(): void {
    clearInterval(this.sender);
    this.sender = undefined;
  }

  close(): void {
    this.stopAudio();
    this.rtp.close();
  }

  private sendFrame(port: number): void {
    const pkt = Buffer.alloc(12 + 160, 0xff);
    pkt[0] = 0x80;
    pkt[1] = 0;
    pkt.writeUInt16BE(this.seq, 2);
    pkt.writeUInt32BE(this.timestamp, 4);
    pkt.writeUInt32BE(0x12345678, 8);
    this.seq = (this.seq + 1) & 0xffff;
    this.timestamp = (this.timestamp + 160) >>> 0;
    this.rtp.send(pkt, port, '127.0.0.1');
  }
}
