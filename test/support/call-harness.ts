import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { loadConfig } from '../../config/load.js';
import type { BotCredentials } from '../../config/schema.js';
import { MediaClock } from '../../media/clock.js';
import { RtpPortPool } from '../../media/port-pool.js';
import { Call } from '../../plugin/call/call.js';
import { CallWatchdog } from '../../plugin/call/watchdog.js';
import { compileRules } from '../../plugin/call/escalation.js';
import type { InviteRequest, OutgoingInvite, SipBackend, SipLeg, SipMessageView } from '../../plugin/sip/backend.js';
import { SipFailure } from '../../plugin/sip/errors.js';

/**
 * One whole Call, in-process, for its races and its way out: a real Talkdesk WebSocket on loopback, real RTP sockets
 * and clock, and a SIP backend the test scripts (it answers and breaks the legs). It keeps the port's promises as the
 * real adapters do: cancel() before the answer rejects `answered` with a canceled SipFailure at once, and is a no-op
 * after it (a 2xx racing a CANCEL is the adapter's to ACK and BYE, never the call's). What it does not reproduce: SIP
 * on the wire (the adapters' own suites and the contract suite cover it); a leg's answer carries a fixed SDP.
 */

export const SID = 'MZcall';
const start = (n: number): string =>
  JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    start: { streamSid: `${SID}${n}`, accountSid: 'AC', callSid: `CA${n}`, tracks: ['inbound'], customParameters: {} },
    streamSid: `${SID}${n}`,
  });
const ANSWER = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 9 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');

export function view(method: string, headers: Record<string, string>): SipMessageView {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, headers: lower, body: '', get: (name) => lower[name.toLowerCase()], has: (name) => name.toLowerCase() in lower };
}

export interface PlacedInvite {
  request: InviteRequest;
  answer(leg?: Partial<SipLeg>): void;
  hangups: Array<Record<string, string> | undefined>;
  /** times the call cancelled this INVITE */
  cancels: number;
}

/** A backend that hands each INVITE to the test, which answers it with a leg whose hangup it may break. */
export class ScriptedBackend implements SipBackend {
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
    let reject!: (err: SipFailure) => void;
    let settled = false;
    const answered = new Promise<SipLeg>((res, rej) => {
      resolve = (leg) => void (settled ||= (res(leg), true));
      reject = (err) => void (settled ||= (rej(err), true));
    });
    const placed: PlacedInvite = {
      request,
      hangups: [],
      cancels: 0,
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
    const cancel = (): void => {
      placed.cancels++;
      reject(new SipFailure('canceled', 'INVITE cancelled'));
    };
    return { answered, cancel };
  }

  next(): Promise<PlacedInvite> {
    const ready = this.placed.find((p) => !(p as { taken?: boolean }).taken);
    const take = (p: PlacedInvite): PlacedInvite => Object.assign(p, { taken: true });
    if (ready) return Promise.resolve(take(ready));
    return new Promise((resolve) => this.waiting.push((p) => resolve(take(p))));
  }
}

export interface Harness {
  backend: ScriptedBackend;
  ports: RtpPortPool;
  logs: Array<Record<string, unknown>>;
  /** a Talkdesk socket and the call on the gateway's side of it; `server` is the call's own ws */
  dial(n: number, opts?: { start?: boolean }): Promise<{ client: WebSocket; server: WebSocket; call: Call; received: Array<Record<string, unknown>> }>;
}

/** Run by the test file's afterEach: closes what harness() opened. */
export const cleanups: Array<() => Promise<void> | void> = [];
export async function cleanUp(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export async function harness(opts: { teardownDeadlineMs?: number } = {}): Promise<Harness> {
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
  const bot: BotCredentials = { botId: 'st-test', clientId: 'cs-test', clientSecrets: ['secret'] };

  return {
    backend,
    ports,
    logs,
    async dial(n, opts = {}) {
      const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`);
      const received: Array<Record<string, unknown>> = [];
      client.on('message', (data) => received.push(JSON.parse(data.toString()) as Record<string, unknown>));
      cleanups.push(() => client.terminate());
      const [server] = await accepted;
      const call = new Call(deps, server, { ok: true, bot, secretIndex: 0, params: { sipuri: `+1555${n}`, botId: bot.botId, accountId: 'a', agentassist: false } }, `call-${n}`);
      cleanups.push(async () => {
        await call.end({ outcome: 'error', cause: 'test-over' });
      });
      await once(client, 'open');
      if (opts.start !== false) client.send(start(n));
      return { client, server, call, received };
    },
  };
}

export const stopOf = (received: Array<Record<string, unknown>>): unknown => received.find((f) => f['event'] === 'stop')?.['stop'];

/** Talkdesk's stop frame for call n */
export const talkdeskStop = (n: number): string =>
  JSON.stringify({ event: 'stop', sequenceNumber: '9', stop: { accountSid: 'AC', callSid: `CA${n}` }, streamSid: `${SID}${n}` });
