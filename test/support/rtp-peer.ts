import { createSocket, type Socket } from 'node:dgram';
import { parse, type ParsedRtpPacket } from 'rtp-packet';
import type { RemoteMedia } from '../../media/sdp.js';

/** A plain UDP peer standing in for the bot in RtpSession tests: records every RTP packet it gets, parsed. */
export class RtpPeer {
  readonly received: ParsedRtpPacket[] = [];
  private constructor(
    readonly socket: Socket,
    readonly address: string,
    readonly port: number,
  ) {
    socket.on('message', (msg) => {
      const pkt = parse(msg);
      if (pkt) this.received.push(pkt);
    });
  }
  static async bind(address = '127.0.0.1'): Promise<RtpPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, address, () => r()));
    return new RtpPeer(s, address, s.address().port);
  }
  send(buf: Uint8Array, port: number): Promise<void> {
    return new Promise((r) => this.socket.send(buf, port, '127.0.0.1', () => r()));
  }
  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

/** The answer a peer would give: PCMU, telephone-event 101, sendrecv, unless `extra` says otherwise. */
export function remoteOf(peer: RtpPeer, extra: Partial<RemoteMedia> = {}): RemoteMedia {
  return { address: peer.address, port: peer.port, audioPayloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv', ...extra };
}
