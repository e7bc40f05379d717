/**
 * The floor: a bare Node process doing only the work every bridged packet cannot avoid, for the same calls the
 * plugin carries, pinned to the plugin's core by run.ts, so the plugin's CPU per packet can be put as a ratio to it.
 *
 * Per call: a WebSocket (ws, no compression, as the plugin), one UDP socket, and the shared phased MediaClock (the
 * pacing is part of the unavoidable work; it is the same clock the plugin uses). Per Talkdesk frame: JSON.parse and a
 * base64 decode into a small queue. Per clock tick: a new 172-byte packet (header + the oldest queued frame, or
 * silence) and one dgram send to the bot. Per bot packet: a base64 encode of its payload and one ws send of the
 * plugin's media frame text. No SIP, no auth, no validation, no stats, no logging.
 *
 * The load generator connects to ws://127.0.0.1:<port>/?botRtp=<its RTP port>&sid=<streamSid> and is told the RTP
 * port to send to in a first text frame {"event":"floor","rtpPort":N}.
 */
import { createSocket } from 'node:dgram';
import { WebSocketServer } from 'ws';
import { MediaClock, type ClockSubscription } from '../media/clock.js';
import { mediaFrame } from '../plugin/talkdesk/codec.js';
import { callerAudio, FRAME, rtpPacket } from './floor-packets.js';

const HOST = '127.0.0.1';
const clock = new MediaClock();
const wss = new WebSocketServer({ host: HOST, port: Number(process.env.FLOOR_PORT ?? 0), perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const botPort = Number(query.get('botRtp'));
  const sid = query.get('sid') ?? '';
  const socket = createSocket('udp4');
  const queue: Buffer[] = [];
  let ssrc = 0x1234;
  let seq = 0;
  let ts = 0;
  let subscription: ClockSubscription | undefined;
  socket.bind(0, HOST, () => {
    ws.send(JSON.stringify({ event: 'floor', rtpPort: socket.address().port }));
    subscription = clock.add({
      onFrame() {
        socket.send(rtpPacket(seq, ts, ssrc, queue.shift()), botPort, HOST);
        seq = (seq + 1) & 0xffff;
        ts = (ts + FRAME) >>> 0;
      },
    });
  });
  socket.on('message', (msg) => {
    ws.send(mediaFrame(sid, msg.toString('base64', 12)));
  });
  ws.on('message', (data) => {
    const audio = callerAudio(data as Buffer);
    if (audio === undefined) return;
    for (let at = 0; at < audio.length; at += FRAME) queue.push(audio.subarray(at, at + FRAME));
    while (queue.length > 3) queue.shift();
  });
  ws.on('error', () => undefined);
  ws.on('close', () => {
    subscription?.remove();
    ssrc++;
    socket.close();
  });
});

wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(JSON.stringify({ floorPort: typeof address === 'object' && address !== null ? address.port : 0 }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
