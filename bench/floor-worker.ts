/**
 * The floor (floor.ts) with its media clock and RTP sockets in a worker thread (`--floor-worker`): the same work per
 * packet, split over two event loops, to measure what a second loop buys the clock before the plugin is built that
 * way (issue 14, docs/benchmarks/clock-under-load.md).
 *
 * Main thread: the WebSockets, JSON and base64. Each call's caller audio goes to the worker through a ring of frames
 * in a SharedArrayBuffer (no message per frame); the bot's audio comes back in one message per turn of the worker's
 * loop. Worker: the phased MediaClock, one UDP socket per call, the RTP packets each way.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { WebSocketServer, type WebSocket } from 'ws';
import { MediaClock, type ClockSubscription } from '../media/clock.js';
import { mediaFrame } from '../plugin/talkdesk/codec.js';
import { callerAudio, FRAME, rtpPacket } from './floor-packets.js';

const HOST = '127.0.0.1';
/** frames a ring holds; the floor keeps at most 3 queued, as floor.ts does */
const RING_FRAMES = 4;
/** [written, read] frame counters, then the frames */
const HEADER_BYTES = 8;

type ToWorker = { op: 'open'; id: number; botPort: number; ring: SharedArrayBuffer } | { op: 'close'; id: number };
type FromWorker = { op: 'opened'; id: number; rtpPort: number } | { op: 'audio'; items: Array<[number, string]> };

if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url));
  const calls = new Map<number, { ws: WebSocket; sid: string }>();
  let nextId = 1;
  worker.on('message', (msg: FromWorker) => {
    if (msg.op === 'opened') {
      calls.get(msg.id)?.ws.send(JSON.stringify({ event: 'floor', rtpPort: msg.rtpPort }));
      return;
    }
    for (const [id, payload] of msg.items) {
      const call = calls.get(id);
      if (call) call.ws.send(mediaFrame(call.sid, payload));
    }
  });

  const wss = new WebSocketServer({ host: HOST, port: Number(process.env.FLOOR_PORT ?? 0), perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const id = nextId++;
    calls.set(id, { ws, sid: query.get('sid') ?? '' });
    const ring = new SharedArrayBuffer(HEADER_BYTES + RING_FRAMES * FRAME);
    const counters = new Int32Array(ring, 0, 2);
    const frames = new Uint8Array(ring, HEADER_BYTES);
    worker.postMessage({ op: 'open', id, botPort: Number(query.get('botRtp')), ring } satisfies ToWorker);
    ws.on('message', (data) => {
      const audio = callerAudio(data as Buffer);
      if (audio === undefined) return;
      for (let at = 0; at + FRAME <= audio.length; at += FRAME) {
        const written = Atomics.load(counters, 0);
        // full: the worker skips the oldest (floor.ts keeps 3)
        frames.set(audio.subarray(at, at + FRAME), (written % RING_FRAMES) * FRAME);
        Atomics.store(counters, 0, written + 1);
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      calls.delete(id);
      worker.postMessage({ op: 'close', id } satisfies ToWorker);
    });
  });
  wss.on('listening', () => {
    const address = wss.address();
    process.stdout.write(JSON.stringify({ floorPort: typeof address === 'object' && address !== null ? address.port : 0 }) + '\n');
  });
  process.on('SIGTERM', () => process.exit(0));
} else {
  const port = parentPort!;
  const clock = new MediaClock();
  const legs = new Map<number, { socket: Socket; subscription?: ClockSubscription }>();
  let pending: Array<[number, string]> = [];
  const flush = (): void => {
    port.postMessage({ op: 'audio', items: pending } satisfies FromWorker);
    pending = [];
  };
  port.on('message', (msg: ToWorker) => {
    if (msg.op === 'close') {
      const leg = legs.get(msg.id);
      legs.delete(msg.id);
      leg?.subscription?.remove();
      leg?.socket.close();
      return;
    }
    const { id, botPort } = msg;
    const counters = new Int32Array(msg.ring, 0, 2);
    const frames = new Uint8Array(msg.ring, HEADER_BYTES);
    const socket = createSocket('udp4');
    const leg: { socket: Socket; subscription?: ClockSubscription } = { socket };
    legs.set(id, leg);
    let seq = 0;
    let ts = 0;
    socket.bind(0, HOST, () => {
      port.postMessage({ op: 'opened', id, rtpPort: socket.address().port } satisfies FromWorker);
      leg.subscription = clock.add({
        onFrame() {
          const written = Atomics.load(counters, 0);
          let read = Atomics.load(counters, 1);
          if (written - read > 3) read = written - 3;
          const at = (read % RING_FRAMES) * FRAME;
          // copied into the packet before the read is published, so main cannot write over the frame meanwhile
          const pkt = rtpPacket(seq, ts, 0x1234 + id, read < written ? frames.subarray(at, at + FRAME) : undefined);
          if (read < written) Atomics.store(counters, 1, read + 1);
          socket.send(pkt, botPort, HOST);
          seq = (seq + 1) & 0xffff;
          ts = (ts + FRAME) >>> 0;
        },
      });
    });
    socket.on('message', (rtp) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push([id, rtp.toString('base64', 12)]);
    });
  });
}
