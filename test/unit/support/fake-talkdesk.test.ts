import jwt from 'jsonwebtoken';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { toneUlaw } from '../../support/audio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl, UpgradeRefusedError } from '../../support/fake-talkdesk.js';

/** Stands in for the plugin: accepts one socket and records what arrives, with arrival times. */
class PluginStandIn {
  readonly wss: WebSocketServer;
  readonly frames: Array<{ at: number; msg: Record<string, unknown> }> = [];
  socket: Promise<WebSocket>;

  static async listen(opts: { refuseWith?: number } = {}): Promise<PluginStandIn> {
    const p = new PluginStandIn(opts);
    await new Promise((resolve) => p.wss.once('listening', resolve));
    return p;
  }

  private constructor(opts: { refuseWith?: number }) {
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (_info, cb) => (opts.refuseWith === undefined ? cb(true) : cb(false, opts.refuseWith, 'bad token')),
    });
    this.socket = new Promise((resolve) => {
      this.wss.once('connection', (ws) => {
        ws.on('message', (data) => this.frames.push({ at: performance.now(), msg: JSON.parse(String(data)) }));
        resolve(ws);
      });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/audiosocket/talkdesk`;
  }

  async until(count: number): Promise<void> {
    while (this.frames.length < count) await new Promise((r) => setTimeout(r, 5));
  }

  close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

const start = { streamSid: 'MZ1', accountSid: 'AC1', callSid: 'CA1', interactionId: 'IN1' };

describe('FakeTalkdesk', () => {
  let plugin: PluginStandIn;
  beforeEach(async () => {
    plugin = await PluginStandIn.listen();
  });
  afterEach(() => plugin.close());

  it('sends connected, start, media and stop in Talkdesk shapes with string counters', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    const audio = toneUlaw(1000, 40);
    td.sendConnected();
    td.sendStart(start);
    await td.streamAudio(audio, { realtime: false });
    td.sendStop();
    await plugin.until(5);
    expect(plugin.frames.map((f) => f.msg)).toEqual([
      { event: 'connected', protocol: 'Call', version: '1.0.0' },
      {
        event: 'start',
        sequenceNumber: '1',
        start: {
          streamSid: 'MZ1',
          accountSid: 'AC1',
          callSid: 'CA1',
          tracks: ['inbound'],
          customParameters: { interaction_id: 'IN1', account_id: 'AC1' },
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
        streamSid: 'MZ1',
      },
      {
        event: 'media',
        sequenceNumber: '2',
        media: { track: 'inbound', chunk: '1', timestamp: '0', payload: audio.subarray(0, 160).toString('base64') },
        streamSid: 'MZ1',
      },
      {
        event: 'media',
        sequenceNumber: '3',
        media: { track: 'inbound', chunk: '2', timestamp: '20', payload: audio.subarray(160).toString('base64') },
        streamSid: 'MZ1',
      },
      { event: 'stop', sequenceNumber: '4', stop: { accountSid: 'AC1', callSid: 'CA1' }, streamSid: 'MZ1' },
    ]);
    await td.close();
  });

  it('paces realtime audio on the audio clock, 40 ms per 320-byte frame', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    td.sendStart(start);
    const t0 = performance.now();
    await td.streamAudio(toneUlaw(440, 400), { frameBytes: 320 });
    await plugin.until(11);
    const media = plugin.frames.slice(1);
    expect(media.map((f) => (f.msg.media as { timestamp: string }).timestamp)).toEqual(
      Array.from({ length: 10 }, (_, k) => String(k * 40)),
    );
    // the last frame leaves at 9 × 40 ms; timers may fire up to ~1 ms early
    expect((media[9] as { at: number }).at - t0).toBeGreaterThanOrEqual(355);
    expect((media[9] as { at: number }).at - t0).toBeLessThan(600);
    await td.close();
  });

  it('sends on a sender profile: held frames go together, counters as usual, each send time recorded', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    td.sendStart(start);
    // 300 ms of audio; the sender stalls 100 ms at 100 ms, then sends what it held with the frame due then
    const stall = { firstAtMs: 100, lengthMs: 100, catchUp: true };
    const stream = await td.streamAudio(toneUlaw(440, 300), { profile: { frameBytes: 160, speed: 1, stall } });
    await plugin.until(16);
    const media = plugin.frames.slice(1);
    expect(media.map((f) => (f.msg.media as { chunk: string }).chunk)).toEqual(
      Array.from({ length: 15 }, (_, k) => String(k + 1)),
    );
    expect(td.streams).toEqual([stream]);
    expect(stream.chunks.map((c) => c.atMs)).toEqual([0, 20, 40, 60, 80, 200, 200, 200, 200, 200, 200, 220, 240, 260, 280]);
    for (const c of stream.chunks) {
      // never before its time (timers may fire ~1 ms early), and not a stall's worth after it
      expect(c.sentAt - stream.t0).toBeGreaterThanOrEqual(c.atMs - 1);
      expect(c.sentAt - stream.t0).toBeLessThan(c.atMs + 50);
    }
    // the held frames arrive together, 100 ms after the frame before them
    const arrivals = media.map((f) => f.at);
    expect(arrivals[10]! - arrivals[5]!).toBeLessThan(15);
    expect(arrivals[5]! - arrivals[4]!).toBeGreaterThan(90);
    await td.close();
  });

  it('refuses a profile together with frameBytes or realtime, which it would override', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    td.sendStart(start);
    await expect(td.streamAudio(toneUlaw(440, 40), { profile: 'steady', realtime: false })).rejects.toThrow(/profile/);
    await td.close();
  });

  it('echoes a mark with its name and the streamSid, after the configured delay', async () => {
    const td = await FakeTalkdesk.connect(plugin.url, { markEchoDelayMs: 100 });
    td.sendStart(start);
    const ws = await plugin.socket;
    const sentAt = performance.now();
    ws.send(JSON.stringify({ event: 'mark', streamSid: 'MZ1', mark: { name: 'utt-7' } }));
    await plugin.until(2);
    expect(plugin.frames[1]?.msg).toEqual({
      event: 'mark',
      sequenceNumber: '2',
      streamSid: 'MZ1',
      mark: { name: 'utt-7' },
    });
    expect((plugin.frames[1]?.at ?? 0) - sentAt).toBeGreaterThanOrEqual(95);
    expect(td.received[0]?.msg).toEqual({ event: 'mark', streamSid: 'MZ1', mark: { name: 'utt-7' } });
    await td.close();
  });

  it('does not echo marks when told not to', async () => {
    const td = await FakeTalkdesk.connect(plugin.url, { echoMarks: false });
    td.sendStart(start);
    const ws = await plugin.socket;
    ws.send(JSON.stringify({ event: 'mark', streamSid: 'MZ1', mark: { name: 'utt-1' } }));
    await td.waitFor((r) => r.msg.event === 'mark', 1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(plugin.frames.map((f) => f.msg.event)).toEqual(['start']);
    await td.close();
  });

  it('records the plugin frames, decodes media and keeps junk visible', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    const ws = await plugin.socket;
    const a = toneUlaw(500, 20);
    const b = toneUlaw(700, 20);
    for (const p of [a, b]) {
      ws.send(JSON.stringify({ event: 'media', streamSid: 'MZ1', media: { payload: p.toString('base64') } }));
    }
    ws.send('not json');
    ws.send(Buffer.from([1, 2, 3]));
    ws.send(JSON.stringify({ event: 'stop', streamSid: 'MZ1', stop: { command: 'escalate', ringGroup: 'billing' } }));
    const { stop, at } = await td.waitForStop(1000);
    expect(stop).toEqual({ event: 'stop', streamSid: 'MZ1', stop: { command: 'escalate', ringGroup: 'billing' } });
    expect(at).toBe(td.received[4]?.at);
    expect(td.mediaPayloads()).toEqual([a, b]);
    expect(td.received[2]?.msg).toEqual({ raw: 'not json' });
    expect(td.received[3]?.msg).toEqual({ binary: Buffer.from([1, 2, 3]).toString('base64') });
    await td.close();
  });

  it('fails waitForStop as soon as the socket closes without a stop, and reports the close', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    const ws = await plugin.socket;
    const waiting = td.waitForStop(5000);
    ws.close(1011, 'internal');
    await expect(waiting).rejects.toThrow('socket closed (1011 internal) before stop');
    expect(await td.closed).toEqual({ code: 1011, reason: 'internal' });
  });

  it('times out waitForStop naming what did arrive', async () => {
    const td = await FakeTalkdesk.connect(plugin.url);
    const ws = await plugin.socket;
    ws.send(JSON.stringify({ event: 'clear', streamSid: 'MZ1' }));
    await expect(td.waitForStop(100)).rejects.toThrow('no stop within 100 ms; received: clear');
    await td.close();
  });

  it('surfaces a refused upgrade with its HTTP status and body', async () => {
    const refusing = await PluginStandIn.listen({ refuseWith: 401 });
    try {
      const err: unknown = await FakeTalkdesk.connect(refusing.url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpgradeRefusedError);
      expect(err).toMatchObject({ status: 401, body: 'bad token' });
    } finally {
      await refusing.close();
    }
  });
});

describe('makeToken', () => {
  it('is an HS256 JWT of { appId } under the client secret', () => {
    const token = makeToken('cs-123', 'secret');
    expect(jwt.decode(token, { complete: true })?.header.alg).toBe('HS256');
    expect(jwt.verify(token, 'secret')).toMatchObject({ appId: 'cs-123' });
    expect(() => jwt.verify(token, 'other')).toThrow();
  });
});

describe('talkdeskUrl', () => {
  const params = { port: 8080, sipuri: '+17345550100', token: 't.k.n', botId: 'st-1', accountId: 'a1' };

  it('builds Kore-style query parameters, encoding the + of the number', () => {
    const url = talkdeskUrl({ ...params, agentassist: false });
    expect(url).toBe(
      'ws://127.0.0.1:8080/audiosocket/talkdesk' +
        '?sipuri=%2B17345550100&token=t.k.n&botId=st-1&accountId=a1&agentassist=false',
    );
  });

  it('adds the trailing slash of Kore docs and leaves agentassist out when not given', () => {
    const url = new URL(talkdeskUrl({ ...params, trailingSlash: true }));
    expect(url.pathname).toBe('/audiosocket/talkdesk/');
    expect(url.searchParams.has('agentassist')).toBe(false);
    expect(url.searchParams.get('sipuri')).toBe('+17345550100');
  });
});
