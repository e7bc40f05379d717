import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { loadConfig } from '../../../config/load.js';
import { MediaClock } from '../../../media/clock.js';
import { RtpPortPool } from '../../../media/port-pool.js';
import { Call, type CallSummary } from '../../../plugin/call.js';
import { CallWatchdog } from '../../../plugin/call-watchdog.js';
import { compileRules } from '../../../plugin/escalation.js';
import type { InviteRequest, OutgoingInvite, SipBackend, SipLeg, SipMessageView } from '../../../plugin/sip/backend.js';

/**
 * A call's way out when one of its release steps throws, or one of its handlers does: the steps after it still run
 * (stop to Talkdesk, BYE, the RTP port, the socket), only that call ends, and nothing escapes to the process. The call
 * runs whole: a real Talkdesk WebSocket on loopback, real RTP sockets and clock; the SIP backend is a fake whose
 * legs the test answers and breaks.
 */

const SID = 'MZteardown';
const start = (n: number): string =>
  JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    start: { streamSid: `${SID}${n}`, accountSid: 'AC', callSid: `CA${n}`, tracks: ['inbound'], customParameters: {} },
    streamSid: `${SID}${n}`,
  });
const ANSWER = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 9 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');

function view(method: string, headers: Record<string, string>): SipMessageView {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, headers: lower, body: '', get: (name) => lower[name.toLowerCase()], has: (name) => name.toLowerCase() in lower };
}

interface PlacedInvite {
  request: InviteRequest;
  answer(leg?: Partial<SipLeg>): void;
  hangups: Array<Record<string, string> | undefined>;
}

/** A backend that hands each INVITE to the test, which answers it with a leg whose hangup it may break. */
class ScriptedBackend implements SipBackend {
  readonly name = 'embedded' as const;
  readonly ready = true;
  readonly placed: PlacedInvite[] = [];
  private waiting: Array<(p: PlacedInvite) => void> = [];
  /** set to make the next invite() throw, as a backend with a bug would (the port says it never throws) */
  throwOnInvite = false;
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  invite(request: InviteRequest): OutgoingInvite {
    if (this.throwOnInvite) throw new Error('backend bug in invite()');
    let resolve!: (leg: SipLeg) => void;
    const answered = new Promise<SipLeg>((r) => (resolve = r));
    const placed: PlacedInvite = {
      request,
      hangups: [],
      answer: (leg = {}) =>
        resolve({
          callId: `call-${this.placed.length}`,
          remoteSdp: ANSWER,
          hangup: async (headers) => void placed.hangups.push(headers),
          ...leg,
        }),
    };
    this.placed.push(placed);
    this.waiting.shift()?.(placed);
    return { answered, cancel: () => {} };
  }

  next(): Promise<PlacedInvite> {
    const ready = this.placed.find((p) => !(p as { taken?: boolean }).taken);
    const take = (p: PlacedInvite): PlacedInvite => Object.assign(p, { taken: true });
    if (ready) return Promise.resolve(take(ready));
    return new Promise((resolve) => this.waiting.push((p) => resolve(take(p))));
  }
}

interface Harness {
  backend: ScriptedBackend;
  ports: RtpPortPool;
  logs: Array<Record<string, unknown>>;
  /** a Talkdesk socket and the call on the gateway's side of it; `server` is the call's own ws */
  dial(n: number): Promise<{ client: WebSocket; server: WebSocket; call: Call; received: Array<Record<string, unknown>> }>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(opts: { teardownDeadlineMs?: number } = {}): Promise<Harness> {
  const loaded = loadConfig({
    file: 'jambonz-app.json',
    env: { LISTEN_PORT: '0', SIP_PORT: '0', METRICS_PORT: '0', RTP_PORT_MIN: '23000', RTP_PORT_MAX: '23098', MARK_TIMEOUT_MS: '300', CLOSE_WAIT_MS: '300' },
  });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const config = loaded.config;
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const backend = new ScriptedBackend();
  const clock = new MediaClock();
  const ports = new RtpPortPool({ bindAddress: '127.0.0.1', min: config.rtp.portMin, max: config.rtp.portMax });
  const watchdog = new CallWatchdog({ log });
  const escalation = compileRules(config.escalation.rules, config.escalation.defaultRingGroup);
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  const deps = { config, backend, clock, ports, escalation, watchdog, log, teardownDeadlineMs: opts.teardownDeadlineMs };
  const bot = { botId: 'st-test', clientId: 'cs-test', clientSecret: 'secret' };

  return {
    backend,
    ports,
    logs,
    async dial(n) {
      const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`);
      const received: Array<Record<string, unknown>> = [];
      client.on('message', (data) => received.push(JSON.parse(data.toString()) as Record<string, unknown>));
      cleanups.push(() => client.terminate());
      const [server] = await accepted;
      const call = new Call(deps, server, { ok: true, bot, params: { sipuri: `+1555${n}`, botId: bot.botId, accountId: 'a', agentassist: false } }, `call-${n}`);
      cleanups.push(async () => {
        await call.end({ outcome: 'error', cause: 'test-over' });
      });
      await once(client, 'open');
      client.send(start(n));
      return { client, server, call, received };
    },
  };
}

const stopOf = (received: Array<Record<string, unknown>>): unknown => received.find((f) => f['event'] === 'stop')?.['stop'];

describe('a call whose release step throws', () => {
  it('a farewell drain that throws: stop still reaches Talkdesk, the bot still gets its BYE, port and socket go', async () => {
    const h = await harness();
    const { client, server, call, received } = await h.dial(1);
    const invite = await h.backend.next();
    invite.answer();
    await expect.poll(() => h.ports.inUse).toBe(1);
    // the socket throws on the drain's mark, as a ws in a bad state would
    const send = server.send.bind(server);
    server.send = ((data: string, ...rest: unknown[]) => {
      if (data.includes('"event":"mark"')) throw new Error('socket broke on the mark');
      return (send as (...a: unknown[]) => void)(data, ...rest);
    }) as typeof server.send;

    // the bot transfers: escalate, whose way out is drain → stop → BYE → port → socket
    const bye = (invite.request.delegate.onRefer(view('REFER', { 'Refer-To': '<sip:agents@talkdesk>' })), call.finished);
    const closed = once(client, 'close');
    const summary: CallSummary = await bye;
    await closed;

    expect(summary).toMatchObject({ outcome: 'escalate', cause: 'bot-refer', teardownFailures: ['farewell-drain'] });
    expect(stopOf(received)).toMatchObject({ command: 'escalate' });
    expect(invite.hangups).toHaveLength(1);
    expect(h.ports.inUse).toBe(0);
    expect(h.logs.some((l) => l['msg'] === 'teardown step failed; the others still run' && l['step'] === 'farewell-drain')).toBe(true);
    expect(h.logs.some((l) => l['msg'] === 'call ended')).toBe(true);
  });

  it('a hangup that throws: its port and socket still go, and the other call is untouched', async () => {
    const h = await harness();
    const a = await h.dial(1);
    const inviteA = await h.backend.next();
    inviteA.answer({
      hangup: () => {
        throw new Error('backend bug in hangup()');
      },
    });
    const b = await h.dial(2);
    const inviteB = await h.backend.next();
    inviteB.answer();
    await expect.poll(() => h.ports.inUse).toBe(2);

    a.client.send(JSON.stringify({ event: 'stop', sequenceNumber: '9', stop: { accountSid: 'AC', callSid: 'CA1' }, streamSid: `${SID}1` }));
    const summary = await a.call.finished;
    expect(summary).toMatchObject({ cause: 'talkdesk-stop', teardownFailures: ['bot-legs'] });
    await expect.poll(() => a.client.readyState).toBe(WebSocket.CLOSED);
    expect(h.ports.inUse).toBe(1);

    // b goes on: its socket open, its port held, and it still ends as a call should
    expect(b.client.readyState).toBe(WebSocket.OPEN);
    b.client.send(JSON.stringify({ event: 'stop', sequenceNumber: '9', stop: { accountSid: 'AC', callSid: 'CA2' }, streamSid: `${SID}2` }));
    expect(await b.call.finished).toMatchObject({ cause: 'talkdesk-stop' });
    expect((await b.call.finished).teardownFailures).toBeUndefined();
    expect(inviteB.hangups).toHaveLength(1);
    expect(h.ports.inUse).toBe(0);
  });

  it('a BYE that never settles: the call is let go at its deadline, its port and socket already released', async () => {
    const h = await harness({ teardownDeadlineMs: 800 });
    const { client, call } = await h.dial(1);
    (await h.backend.next()).answer({ hangup: () => new Promise<void>(() => {}) });
    await expect.poll(() => h.ports.inUse).toBe(1);
    const t0 = performance.now();
    client.send(JSON.stringify({ event: 'stop', sequenceNumber: '9', stop: { accountSid: 'AC', callSid: 'CA1' }, streamSid: `${SID}1` }));
    expect(await call.finished).toMatchObject({ cause: 'talkdesk-stop', teardownFailures: ['overran-deadline'] });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(700);
    expect(h.ports.inUse).toBe(0);
    expect(client.readyState).toBe(WebSocket.CLOSED);
    const overran = h.logs.find((l) => l['msg'] === 'teardown overran its deadline: the call is let go');
    expect(overran).toMatchObject({ stillRunning: ['bot-legs'] });
  });

  it('a backend that throws from invite() ends that call with stop{error} and internal-error, and nothing escapes', async () => {
    const h = await harness();
    const escaped: unknown[] = [];
    const onRejection = (reason: unknown): void => void escaped.push(reason);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => void process.off('unhandledRejection', onRejection));
    h.backend.throwOnInvite = true;
    const { client, call, received } = await h.dial(1);
    expect(await call.finished).toMatchObject({ outcome: 'error', cause: 'internal-error' });
    await expect.poll(() => client.readyState).toBe(WebSocket.CLOSED);
    expect(stopOf(received)).toMatchObject({ command: 'error' });
    expect(h.ports.inUse).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(escaped).toEqual([]);
  });
});
