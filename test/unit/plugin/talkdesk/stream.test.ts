import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { TalkdeskFrame } from '../../../../plugin/talkdesk/codec.js';
import { TalkdeskStream, type TalkdeskStreamOptions } from '../../../../plugin/talkdesk/stream.js';

/**
 * TalkdeskStream over a real loopback WebSocket: the server side is wrapped exactly as the call wraps it, the client
 * side is a plain `ws` client playing Talkdesk. "Nothing was sent" is always proven against what the client really
 * received, either up to a later frame (TCP keeps order) or up to the close.
 */

type Delivered = Exclude<TalkdeskFrame, { kind: 'ignored' | 'malformed' | 'mark' }>;
type Json = Record<string, unknown>;

const SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';
const START = {
  event: 'start',
  sequenceNumber: '1',
  start: {
    streamSid: SID,
    accountSid: 'AC-talkdesk',
    callSid: 'CA-call',
    tracks: ['inbound'],
    customParameters: { interaction_id: 'int-1', account_id: 'acc-1' },
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  },
  streamSid: SID,
};
const BOUND = 512 * 1024;
const ulaw = (fill: number, n = 160): Buffer => Buffer.alloc(n, fill);
const mediaIn = (payload: Buffer): Json => ({
  event: 'media',
  sequenceNumber: '2',
  media: { track: 'inbound', chunk: '1', timestamp: '0', payload: payload.toString('base64') },
  streamSid: SID,
});

interface Pair {
  stream: TalkdeskStream;
  /** the accepted, server-side socket that the stream wraps */
  server: WebSocket;
  /** plays Talkdesk */
  client: WebSocket;
  clientSocket: Socket;
  /** frames the stream handed to its delegate, in order */
  delivered: Delivered[];
  /** codes passed to delegate.onClose */
  closes: number[];
  /** details passed to delegate.onNotReading */
  notReading: string[];
  /** every frame the client received from us, parsed */
  received: Json[];
  /** the client's own close event, with when it happened */
  clientClosed: Promise<{ code: number; at: number }>;
  logs: Json[];
  send(frame: unknown): void;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function closedOrNow(ws: WebSocket): Promise<unknown> {
  return ws.readyState === WebSocket.CLOSED ? Promise.resolve() : once(ws, 'close');
}

async function connect(onClientFrame?: (frame: Json, pair: Pair) => void, opts?: TalkdeskStreamOptions): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    const gone = [...wss.clients].map(closedOrNow);
    for (const ws of wss.clients) ws.terminate();
    await Promise.all(gone);
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;

  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}/audiosocket/talkdesk`);
  cleanups.push(async () => {
    const gone = closedOrNow(client);
    client.terminate();
    await gone;
  });
  const clientClosed = new Promise<{ code: number; at: number }>((resolve) =>
    client.once('close', (code: number) => resolve({ code, at: performance.now() })),
  );
  await once(client, 'open');
  const [server] = await accepted;

  const logs: Json[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Json) });
  const delivered: Delivered[] = [];
  const closes: number[] = [];
  const notReading: string[] = [];
  const stream = new TalkdeskStream(server, log, {
    onFrame: (frame) => delivered.push(frame),
    onClose: (code) => closes.push(code),
    onNotReading: (detail) => notReading.push(detail),
  }, opts);
  const pair: Pair = {
    stream,
    server,
    client,
    clientSocket: (client as unknown as { _socket: Socket })._socket,
    delivered,
    closes,
    notReading,
    received: [],
    clientClosed,
    logs,
    send: (frame) => client.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
  };
  client.on('message', (data, isBinary) => {
    expect(isBinary, 'we only ever send text frames').toBe(false);
    const frame = JSON.parse(data.toString()) as Json;
    pair.received.push(frame);
    onClientFrame?.(frame, pair);
  });
  return pair;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Talkdesk sends `start` and the stream has taken it. */
async function started(p: Pair): Promise<void> {
  p.send(START);
  await until(() => p.delivered.some((f) => f.kind === 'start'), 'start delivered');
}

/** Talkdesk sends `stop` and the stream has taken it. */
async function stoppedByTalkdesk(p: Pair): Promise<void> {
  p.send({ event: 'stop', sequenceNumber: '9', stop: { accountSid: 'AC-talkdesk', callSid: 'CA-call' }, streamSid: SID });
  await until(() => p.delivered.some((f) => f.kind === 'stop'), 'stop delivered');
}

/** Sends `connected` as a sentinel and waits for it: every frame the client sent before has been handled. */
async function flushInbound(p: Pair): Promise<void> {
  const before = p.delivered.filter((f) => f.kind === 'connected').length;
  p.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  await until(() => p.delivered.filter((f) => f.kind === 'connected').length > before, 'sentinel delivered');
}

const activeTimeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const warnings = (p: Pair, text: string): Json[] =>
  p.logs.filter((l) => l['level'] === 40 && String(l['msg']).includes(text));

describe('TalkdeskStream listen-only (agentassist=true)', () => {
  it('delivers both tracks, and sends nothing back whatever the call asks: no media, no mark, no stop; close is 1000', async () => {
    const p = await connect(undefined, { listenOnly: true });
    await started(p);
    const caller = ulaw(0x11);
    const agent = ulaw(0x22);
    p.send(mediaIn(caller));
    p.send({ ...mediaIn(agent), media: { track: 'outbound', chunk: '1', timestamp: '0', payload: agent.toString('base64') } });
    await until(() => p.delivered.filter((f) => f.kind === 'media').length === 2, 'both tracks');
    const media = p.delivered.filter((f): f is Extract<Delivered, { kind: 'media' }> => f.kind === 'media');
    expect(media.map((f) => [f.track, f.payload.equals(f.track === 'outbound' ? agent : caller)])).toEqual([
      ['inbound', true],
      ['outbound', true],
    ]);

    p.stream.sendMedia(ulaw(0x33));
    expect(await p.stream.drain(1000)).toBe('skipped');
    expect(p.stream.sendStop({ command: 'ok' })).toBe(false);
    await p.stream.close(2000);
    expect((await p.clientClosed).code).toBe(1000);
    expect(p.received).toEqual([]);
    expect(p.stream.stats.framesOut).toBe(0);
  });
});

describe('TalkdeskStream: frames from Talkdesk', () => {
  it('delivers media that arrives before start, but sends no media of its own until start gives it a streamSid', async () => {
    const p = await connect();
    const early = ulaw(0x11);
    p.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    p.send(mediaIn(early));
    await until(() => p.delivered.length === 2, 'early frames');
    expect(p.delivered[0]).toEqual({ kind: 'connected' });
    expect(p.delivered[1]).toMatchObject({ kind: 'media', track: 'inbound', chunk: 1, sequenceNumber: 2 });
    expect((p.delivered[1] as { payload: Buffer }).payload.equals(early)).toBe(true);

    p.stream.sendMedia(ulaw(0xaa)); // before start: must go nowhere
    expect(p.stream.stats.framesOut).toBe(0);

    await started(p);
    expect(p.delivered[2]).toMatchObject({ kind: 'start', streamSid: SID, accountSid: 'AC-talkdesk', callSid: 'CA-call' });
    const bot = ulaw(0x22, 320);
    p.stream.sendMedia(bot);
    await until(() => p.received.length >= 1, 'media at the client');
    await sleep(20);
    // exactly one frame, and it is the one sent after start: the pre-start one would have arrived first
    expect(p.received).toEqual([{ event: 'media', streamSid: SID, media: { payload: bot.toString('base64') } }]);
    expect(p.stream.stats.framesOut).toBe(1);
  });

  it('takes the streamSid for outgoing media from start, also when only the top-level field carries it', async () => {
    const p = await connect();
    p.send({ event: 'start', start: { tracks: ['inbound'] }, streamSid: 'top-level-sid' });
    await until(() => p.delivered.length === 1, 'start');
    p.stream.sendMedia(ulaw(0x01, 3));
    await until(() => p.received.length === 1, 'media');
    expect(p.received[0]).toEqual({ event: 'media', streamSid: 'top-level-sid', media: { payload: 'AQEB' } });
  });

  it('ignores binary frames, {}, keep-alives, outbound audio and stray mark echoes: counted, never delivered, socket kept', async () => {
    const p = await connect();
    await started(p);
    p.client.send(Buffer.from([1, 2, 3]), { binary: true });
    p.send('{}');
    p.send({ event: 'keepalive' });
    p.send({ event: 'ping', sequenceNumber: 3 });
    p.send({ event: 'media', media: { track: 'outbound', payload: 'AAAA' } });
    p.send({ event: 'mark', streamSid: SID, mark: { name: 'never-sent' } });
    await flushInbound(p);

    expect(p.delivered.map((f) => f.kind)).toEqual(['start', 'connected']);
    expect(p.stream.stats).toMatchObject({ framesIn: 8, ignored: 5, malformed: 0 });
    expect(p.stream.isOpen).toBe(true);
    expect(p.client.readyState).toBe(WebSocket.OPEN);
    expect(p.closes).toEqual([]);
    // and the stream still works both ways afterwards
    p.send(mediaIn(ulaw(0x33)));
    p.stream.sendMedia(ulaw(0x44));
    await until(() => p.delivered.length === 3 && p.received.length === 1, 'traffic after junk');
    expect(p.delivered[2]?.kind).toBe('media');
  });

  it('counts non-JSON and malformed frames without delivering them or closing, and logs that at most once per 10 s', async () => {
    const p = await connect();
    await started(p);
    p.send('this is not json');
    p.send('[1,2,3]');
    p.send({ event: 'media', media: { payload: '***not base64***' } });
    p.send({ event: 'mark', mark: {} });
    p.send({ event: 'dtmf', dtmf: { digit: 'Z' } });
    p.send({ event: 'start', start: { streamSid: 'has"quote' } });
    await flushInbound(p);

    expect(p.delivered.map((f) => f.kind)).toEqual(['start', 'connected']);
    expect(p.stream.stats).toMatchObject({ framesIn: 8, ignored: 0, malformed: 6 });
    expect(p.stream.isOpen).toBe(true);
    expect(p.closes).toEqual([]);
    const noticed = warnings(p, 'malformed frame ignored');
    expect(noticed).toHaveLength(1);
    expect(noticed[0]?.['msg']).toBe('malformed frame ignored: not JSON');

    // a malformed start did not replace the good streamSid
    p.stream.sendMedia(ulaw(0x55, 3));
    await until(() => p.received.length === 1, 'media');
    expect(p.received[0]?.['streamSid']).toBe(SID);
  });

  it('a second start is counted as ignored, never delivered, and 2,000 of them log one line', async () => {
    const p = await connect();
    await started(p);
    const second = { ...START, start: { ...START.start, streamSid: 'MZ-second', callSid: 'CA-second' }, streamSid: 'MZ-second' };
    for (let i = 0; i < 2000; i++) p.send(second);
    await flushInbound(p);

    expect(p.delivered.map((f) => f.kind)).toEqual(['start', 'connected']);
    expect(p.stream.stats).toMatchObject({ framesIn: 2002, ignored: 2000, malformed: 0 });
    expect(warnings(p, 'second start frame ignored')).toHaveLength(1);
    // the first start named the stream for good
    p.stream.sendMedia(ulaw(0x55, 3));
    await until(() => p.received.length === 1, 'media');
    expect(p.received[0]?.['streamSid']).toBe(SID);
  });

  it('ignored() counts what the call had no use for and logs it once per 10 s, apart from malformed frames', async () => {
    const p = await connect();
    await started(p);
    p.send('this is not json');
    await flushInbound(p);
    for (let i = 0; i < 2000; i++) p.stream.ignored('dtmf from talkdesk before the bot answered: dropped');

    expect(p.stream.stats).toMatchObject({ ignored: 2000, malformed: 1 });
    // each kind gets its own line: the malformed notice just before does not hide the first ignored one
    expect(warnings(p, 'malformed frame ignored')).toHaveLength(1);
    const lines = warnings(p, 'dtmf from talkdesk before the bot answered: dropped');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ ignored: 1, suppressed: 0 });
  });

  it("delivers Talkdesk's stop, and then sends nothing at all: no media, no mark, no stop; close() closes with 1000 at once", async () => {
    const p = await connect();
    await started(p);
    await stoppedByTalkdesk(p);
    expect(p.stream.stoppedByTalkdesk).toBe(true);

    p.stream.sendMedia(ulaw(0x66));
    expect(p.stream.sendStop({ command: 'ok' })).toBe(false);
    expect(await p.stream.drain(5000)).toBe('skipped');

    const t0 = performance.now();
    await p.stream.close(5000);
    expect(performance.now() - t0).toBeLessThan(1000);
    const { code } = await p.clientClosed;
    expect(code).toBe(1000);
    expect(p.closes).toEqual([1000]);
    expect(p.received).toEqual([]);
    expect(p.stream.stats.framesOut).toBe(0);
  });
});

describe('TalkdeskStream: our stop', () => {
  it('sends exactly one stop, with command, ringGroup, accountSid and callSid; the second call returns false', async () => {
    const p = await connect();
    await started(p);
    const report = { command: 'escalate' as const, ringGroup: 'billing_es', accountSid: 'AC-talkdesk', callSid: 'CA-call' };
    expect(p.stream.sendStop(report)).toBe(true);
    expect(p.stream.sendStop({ command: 'error' })).toBe(false);
    p.stream.sendMedia(ulaw(0x77)); // after our stop: nothing more either
    expect(await p.stream.drain(5000)).toBe('skipped');

    await p.stream.close(50); // the client never closes: we close after 50 ms
    await p.clientClosed;
    expect(p.received).toEqual([
      {
        event: 'stop',
        sequenceNumber: '1',
        streamSid: SID,
        stop: { accountSid: 'AC-talkdesk', callSid: 'CA-call', command: 'escalate', ringGroup: 'billing_es' },
      },
    ]);
    expect(p.stream.stats.framesOut).toBe(1);
  });

  it('sends ringGroup null with an ok stop', async () => {
    const p = await connect();
    await started(p);
    expect(p.stream.sendStop({ command: 'ok', ringGroup: 'ignored-for-ok' })).toBe(true);
    await until(() => p.received.length === 1, 'stop');
    expect(p.received[0]).toEqual({ event: 'stop', sequenceNumber: '1', streamSid: SID, stop: { command: 'ok', ringGroup: null } });
  });

  it("numbers the stop with our count of frames sent, itself included (protocol notes §3.4, §8.5); media and mark carry none (§3.1, §3.2)", async () => {
    const p = await connect();
    await started(p);
    p.stream.sendMedia(ulaw(0x01));
    p.stream.sendMedia(ulaw(0x02));
    expect(await p.stream.drain(20)).toBe('timeout'); // the client does not echo: the mark still went out
    p.stream.sendMedia(ulaw(0x03));
    p.stream.sendMedia(ulaw(0x04)); // dropped by nobody: all four reach the client
    expect(p.stream.sendStop({ command: 'ok' })).toBe(true);
    await until(() => p.received.length === 6, 'media, mark and stop');

    expect(p.received.map((f) => f['event'])).toEqual(['media', 'media', 'mark', 'media', 'media', 'stop']);
    expect(p.received[5]!['sequenceNumber']).toBe('6');
    expect(p.received.slice(0, 5).every((f) => !('sequenceNumber' in f))).toBe(true);
    expect(p.received[0]).toEqual({ event: 'media', streamSid: SID, media: { payload: ulaw(0x01).toString('base64') } });
    expect(p.received[2]).toEqual({ event: 'mark', streamSid: SID, mark: { name: expect.any(String) } });
    expect(p.stream.stats.framesOut).toBe(6);
  });
});

describe('TalkdeskStream: drain (mark → echo)', () => {
  const echoMarks = (frame: Json, p: Pair): void => {
    if (frame['event'] === 'mark') p.send({ event: 'mark', sequenceNumber: '50', streamSid: SID, mark: frame['mark'] });
  };

  it("resolves 'echoed' when Talkdesk echoes the mark by name, after the media sent before it, and leaves no timer", async () => {
    const p = await connect(echoMarks);
    await started(p);
    const timersBefore = activeTimeouts();
    p.stream.sendMedia(ulaw(0x10));
    const t0 = performance.now();
    expect(await p.stream.drain(10_000)).toBe('echoed');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(p.received.map((f) => f['event'])).toEqual(['media', 'mark']);
    const mark = p.received[1]!;
    expect(mark).toEqual({ event: 'mark', streamSid: SID, mark: { name: expect.any(String) } });
    expect(activeTimeouts()).toBe(timersBefore); // the 10 s timeout was cleared
    expect(p.delivered.some((f) => (f.kind as string) === 'mark')).toBe(false);

    // a second drain uses a new name and is matched on its own
    expect(await p.stream.drain(10_000)).toBe('echoed');
    const names = p.received.filter((f) => f['event'] === 'mark').map((f) => (f['mark'] as Json)['name']);
    expect(new Set(names).size).toBe(2);
  });

  it("resolves 'timeout' when no echo comes, and an echo with another name does not count", async () => {
    const p = await connect((frame, pair) => {
      if (frame['event'] === 'mark') pair.send({ event: 'mark', streamSid: SID, mark: { name: 'someone-else' } });
    });
    await started(p);
    const t0 = performance.now();
    expect(await p.stream.drain(150)).toBe('timeout');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(p.received.filter((f) => f['event'] === 'mark')).toHaveLength(1);
    expect(p.stream.isOpen).toBe(true);

    // a late echo of the timed-out mark is harmless
    const name = (p.received[0]!['mark'] as Json)['name'];
    p.send({ event: 'mark', streamSid: SID, mark: { name } });
    await flushInbound(p);
    expect(p.stream.isOpen).toBe(true);
  });

  it("resolves 'skipped' before start, sending no mark", async () => {
    const p = await connect();
    expect(await p.stream.drain(5000)).toBe('skipped');
    await started(p);
    p.stream.sendMedia(ulaw(0x01, 3));
    await until(() => p.received.length === 1, 'media');
    expect(p.received.map((f) => f['event'])).toEqual(['media']);
  });

  it('a pending drain resolves as soon as the socket closes, not at its timeout, and leaves no timer', async () => {
    const p = await connect();
    await started(p);
    const timersBefore = activeTimeouts();
    const t0 = performance.now();
    const drained = p.stream.drain(20_000);
    await until(() => p.received.length === 1, 'mark');
    p.client.close(1001);
    const result = await drained;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(result).not.toBe('timeout');
    expect(p.closes).toEqual([1001]);
    await p.clientClosed;
    expect(activeTimeouts()).toBe(timersBefore);
  });
});

describe('TalkdeskStream: close', () => {
  it('after our stop, waits for Talkdesk to close first: resolves promptly when it does, without closing itself', async () => {
    const p = await connect((frame, pair) => {
      if (frame['event'] === 'stop') setTimeout(() => pair.client.close(4001, 'bye'), 30);
    });
    await started(p);
    const closeSpy = vi.spyOn(p.server, 'close');
    const timersBefore = activeTimeouts();
    expect(p.stream.sendStop({ command: 'ok' })).toBe(true);
    const t0 = performance.now();
    await p.stream.close(5000);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(p.closes).toEqual([4001]);
    // Talkdesk's code came back to it: we never started a close of our own
    expect((await p.clientClosed).code).toBe(4001);
    expect(closeSpy.mock.calls.map(([code]) => code)).not.toContain(1000);
    expect(activeTimeouts()).toBe(timersBefore); // the 5 s wait was cleared
  });

  it('after our stop, closes with 1000 once waitMs has passed when Talkdesk never closes', async () => {
    const p = await connect();
    await started(p);
    p.stream.sendStop({ command: 'ok' });
    const t0 = performance.now();
    await p.stream.close(200);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2000);
    const { code, at } = await p.clientClosed;
    expect(code).toBe(1000);
    expect(at - t0).toBeGreaterThanOrEqual(190); // our close frame came only after the wait
    expect(p.closes).toEqual([1000]);
  });

  it('without any stop, closes with 1000 at once', async () => {
    const p = await connect();
    await started(p);
    const t0 = performance.now();
    await p.stream.close(5000);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect((await p.clientClosed).code).toBe(1000);
    expect(p.closes).toEqual([1000]);
    expect(p.received).toEqual([]);
  });

  it('terminates a client that ignores the close handshake', async () => {
    const p = await connect();
    await started(p);
    p.stream.sendStop({ command: 'error' });
    p.clientSocket.pause(); // Talkdesk stops reading: it never sees our stop nor our close frame
    const terminate = vi.spyOn(p.server, 'terminate');
    const t0 = performance.now();
    await p.stream.close(100); // 100 ms for Talkdesk to close, then close(1000), then 100 ms for the handshake
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2000);
    expect(terminate).toHaveBeenCalledTimes(1);
    // close() returns right after terminate(); the close event follows within a tick or two
    await until(() => p.closes.length > 0, 'onClose after terminate', 500);
    expect(p.closes).toEqual([1006]);
    expect(p.stream.isOpen).toBe(false);
  });

  it('onClose fires once with the code, whoever closes; later calls are no-ops', async () => {
    const p = await connect();
    await started(p);
    p.client.close(4002);
    await until(() => p.closes.length > 0, 'onClose');
    expect(p.closes).toEqual([4002]);
    expect(p.stream.isOpen).toBe(false);
    expect(p.stream.sendStop({ command: 'ok' })).toBe(false);
    expect(await p.stream.drain(5000)).toBe('skipped');
    p.stream.sendMedia(ulaw(0x01));
    const t0 = performance.now();
    await p.stream.close(5000);
    expect(performance.now() - t0).toBeLessThan(100);
    await p.clientClosed;
    await sleep(20);
    expect(p.closes).toEqual([4002]);
    expect(p.stream.stats.framesOut).toBe(0);
  });
});

describe('TalkdeskStream: backpressure', () => {
  it('drops bot audio (and counts it) while more than 512 KiB sit unsent, and sends again once below', async () => {
    const p = await connect();
    await started(p);
    let buffered = BOUND;
    Object.defineProperty(p.server, 'bufferedAmount', { configurable: true, get: () => buffered });
    p.stream.sendMedia(ulaw(0x01, 3)); // at the bound: still sent
    buffered = BOUND + 1;
    p.stream.sendMedia(ulaw(0x02, 3));
    p.stream.sendMedia(ulaw(0x03, 3));
    buffered = 0;
    p.stream.sendMedia(ulaw(0x04, 3));
    await until(() => p.received.length === 2, 'media');
    await sleep(20);
    expect(p.received.map((f) => (f['media'] as Json)['payload'])).toEqual([
      ulaw(0x01, 3).toString('base64'),
      ulaw(0x04, 3).toString('base64'),
    ]);
    expect(p.stream.stats).toMatchObject({ framesOut: 2, mediaDropped: 2 });
    expect(warnings(p, 'talkdesk is not reading')).toHaveLength(1);
  });

  it('with a real client that stops reading, stops queueing shortly past the bound and never sends what it dropped', async () => {
    const p = await connect();
    await started(p);
    p.clientSocket.pause();
    const chunk = ulaw(0x5a, 32 * 1024);
    let sends = 0;
    while (p.stream.stats.mediaDropped === 0 && sends < 4000) {
      p.stream.sendMedia(chunk);
      sends++;
    }
    expect(p.stream.stats.mediaDropped).toBe(1);
    const queued = p.server.bufferedAmount;
    expect(queued).toBeGreaterThan(BOUND);
    for (let i = 0; i < 50; i++) p.stream.sendMedia(chunk);
    expect(p.stream.stats.mediaDropped).toBe(51);
    expect(p.server.bufferedAmount).toBe(queued); // dropped audio is not queued
    // one frame past the bound at most: the queue stays bounded
    expect(queued).toBeLessThanOrEqual(BOUND + 2 * chunk.length);

    const sent = p.stream.stats.framesOut;
    expect(sent).toBe(sends - 1);
    p.clientSocket.resume();
    await until(() => p.received.length === sent, 'the queued media', 10_000);
    await sleep(20);
    expect(p.received).toHaveLength(sent);
  });

  it('a client over the bound for notReadingMs is reported once as not reading; one that catches up in time is not', async () => {
    const p = await connect(undefined, { notReadingMs: 200 });
    await started(p);
    let buffered = BOUND + 1;
    Object.defineProperty(p.server, 'bufferedAmount', { configurable: true, get: () => buffered });
    // over the bound for 150 ms, then it reads again: the clock restarts
    for (let t = 0; t < 150; t += 20) {
      p.stream.sendMedia(ulaw(0x01, 3));
      await sleep(20);
    }
    buffered = 0;
    p.stream.sendMedia(ulaw(0x02, 3));
    buffered = BOUND + 1;
    for (let t = 0; t < 150; t += 20) {
      p.stream.sendMedia(ulaw(0x03, 3));
      await sleep(20);
    }
    expect(p.notReading).toEqual([]);
    // now it stays at the bound past 200 ms, dipping just below it now and then (the kernel taking a few bytes):
    // that is not reading; reported, once
    for (let t = 0; t < 200; t += 20) {
      buffered = t % 60 === 0 ? BOUND - 100 : BOUND + 1;
      p.stream.sendMedia(ulaw(0x04, 3));
      await sleep(20);
    }
    buffered = BOUND + 1;
    p.stream.sendMedia(ulaw(0x04, 3));
    expect(p.notReading).toHaveLength(1);
    expect(p.notReading[0]).toMatch(/^talkdesk read nothing for \d+ ms: 524289 bytes unsent$/);
    for (let i = 0; i < 5; i++) p.stream.sendMedia(ulaw(0x05, 3));
    expect(p.notReading).toHaveLength(1);
    expect(activeTimeouts()).toBe(0); // no timer was armed for it
  });
});
