import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DrachtioBot } from '../support/drachtio-bot.js';
import { BOT_PORT, FakeDrachtio } from '../support/fake-drachtio.js';
import type { FakeTalkdesk } from '../support/fake-talkdesk.js';
import { Haproxy } from '../support/haproxy.js';
import { buildPlugin, killPlugins, spawnPlugin, type PluginProcess } from '../support/plugin-process.js';
import { dialGateway, EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { requireTool } from '../support/tools.js';
import { upgradeStatus } from '../support/upgrade-status.js';

// Scale out: the plugin keeps no state shared between calls, so more instances behind a load balancer carry more
// calls. Here a real HAProxy (Debian's) balances two built plugin processes, each health-checked on /ready, both on
// the drachtio backend connected to ONE drachtio-server (the fake, with a bot behind it sending real RTP), as every
// instance on a gateway connects to the gateway's drachtio-server. Which instance carries a call is read from the
// bot's INVITE: its SDP offers an RTP port from that instance's range.
const INSTANCES = {
  a: { RTP_PORT_MIN: '29000', RTP_PORT_MAX: '29098' },
  b: { RTP_PORT_MIN: '29100', RTP_PORT_MAX: '29198' },
} as const;
type Name = keyof typeof INSTANCES;
const GRACE_MS = 20_000;
/** 30 s of μ-law silence: a caller who keeps the stream alive (and TALKDESK_TIMEOUT_MS away) for the whole call */
const CALLER_AUDIO = Buffer.alloc(160 * 1500, 0xff);

let main: string;
beforeAll(() => {
  requireTool('haproxy'); // fails the file with `apt-get install -y haproxy` when missing, before the build
  main = buildPlugin('node_modules/.cache/gw-scale-out-test');
});

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  // the plugins first: a Talkdesk socket then closes at once instead of waiting on a closing handshake
  killPlugins();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Instance {
  name: Name;
  plugin: PluginProcess;
  port: number;
  metricsPort: number;
}

interface LiveCall {
  callSid: string;
  td: FakeTalkdesk;
  bot: DrachtioBot;
  /** the instance that carries it */
  on: Name;
}

interface Cluster {
  drachtio: FakeDrachtio;
  instances: Record<Name, Instance>;
  lb: Haproxy;
  calls: LiveCall[];
  /** a call through HAProxy, answered by the bot, with audio flowing both ways */
  place(): Promise<LiveCall>;
}

async function startCluster(): Promise<Cluster> {
  const drachtio = await FakeDrachtio.start();
  cleanups.push(() => drachtio.close());
  const start = async (name: Name): Promise<Instance> => {
    const plugin = spawnPlugin(main, {
      ...INSTANCES[name],
      SIP_BACKEND: 'drachtio',
      CCAI_SIP_PORT: BOT_PORT,
      DRACHTIO_PORT: String(drachtio.port),
      DRACHTIO_SECRET: drachtio.secret,
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      // HAProxy (option forwardfor) connects from here: the client is the one its X-Forwarded-For names
      TRUSTED_PROXIES: '127.0.0.1',
    });
    return { name, plugin, port: await plugin.port, metricsPort: await plugin.metricsPort };
  };
  const [a, b] = await Promise.all([start('a'), start('b')]);
  expect(drachtio.authenticatedClients).toBe(2);

  const lb = await Haproxy.start([
    { name: 'a', port: a.port },
    { name: 'b', port: b.port },
  ]);
  cleanups.push(() => lb.stop());
  // both in rotation before the first call
  await expect.poll(() => lb.serverStates(), { timeout: 5_000, interval: 100 }).toEqual({ a: 'UP', b: 'UP' });

  const calls: LiveCall[] = [];
  const place = async (): Promise<LiveCall> => {
    const n = calls.length + 1;
    const callSid = `CA-scale-out-${n}`;
    const number = `+1734555${String(n).padStart(4, '0')}`;
    const td = await dialGateway(lb.port, number, { callSid, streamSid: `MZ-scale-out-${n}` });
    cleanups.push(() => td.close());
    // one call at a time, so the next INVITE the bot sees is this call's
    const bot = await DrachtioBot.answerNext(drachtio);
    cleanups.push(() => bot.close());
    expect(bot.invite.sip.uri).toContain(number.slice(1));
    const rtpPort = Number(/^m=audio (\d+)/m.exec(bot.invite.sip.body)?.[1]);
    const on = (Object.keys(INSTANCES) as Name[]).find(
      (name) => rtpPort >= Number(INSTANCES[name].RTP_PORT_MIN) && rtpPort <= Number(INSTANCES[name].RTP_PORT_MAX),
    );
    if (!on) throw new Error(`call ${n}: the INVITE offers RTP port ${rtpPort}, in neither instance's range`);
    void td.streamAudio(CALLER_AUDIO);
    // the bot's audio reaches Talkdesk, and the caller's reaches the bot
    await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);
    await expect.poll(() => bot.rtpReceived, { timeout: 3_000 }).toBeGreaterThan(5);
    const call = { callSid, td, bot, on };
    calls.push(call);
    return call;
  };
  return { drachtio, instances: { a, b }, lb, calls, place };
}

/** The bot hangs up; Talkdesk gets stop{ok} and the socket closes. */
async function botEnds(call: LiveCall): Promise<void> {
  call.bot.bye();
  expect((await call.td.waitForStop(3_000)).stop).toMatchObject({ event: 'stop', stop: { command: 'ok' } });
  await call.td.closed;
}

async function ready(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/ready`)).status;
}

/** Sum of the samples of `name` on an instance's /metrics whose labels include `labels`. */
async function metric(instance: Instance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${instance.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

function endedCalls(instance: Instance): Array<Record<string, unknown>> {
  return instance.plugin.logs.filter((l) => l.msg === 'call ended');
}

const sids = (calls: LiveCall[]): string[] => calls.map((c) => c.callSid).sort();

describe('two plugin instances behind HAProxy, one drachtio-server', () => {
  it('spreads the calls over both instances', async () => {
    const cluster = await startCluster();
    const { instances, drachtio } = cluster;
    for (let k = 0; k < 4; k++) await cluster.place();

    // round robin: every other call on each
    const on = (name: Name): LiveCall[] => cluster.calls.filter((c) => c.on === name);
    expect(on('a')).toHaveLength(2);
    expect(on('b')).toHaveLength(2);
    expect(await metric(instances.a, 'talkdesk_gw_calls_active')).toBe(2);
    expect(await metric(instances.b, 'talkdesk_gw_calls_active')).toBe(2);

    for (const call of cluster.calls) await botEnds(call);

    for (const name of ['a', 'b'] as const) {
      const instance = instances[name];
      expect(await metric(instance, 'talkdesk_gw_calls_total', { outcome: 'ok' })).toBe(2);
      expect(await metric(instance, 'talkdesk_gw_calls_total')).toBe(2);
      expect(await metric(instance, 'talkdesk_gw_calls_active')).toBe(0);
      // each instance's own log names the calls it carried
      await expect.poll(() => endedCalls(instance).map((l) => l.callSid).sort()).toEqual(sids(on(name)));
    }
    expect(drachtio.dialogCount).toBe(0);
  });

  it('a refused upgrade is charged to the caller HAProxy forwarded for, not to HAProxy (TRUSTED_PROXIES)', async () => {
    const { instances, lb } = await startCluster();
    const query = new URLSearchParams({ sipuri: '+17345550000', token: 'not.a.jwt', botId: EXAMPLE_BOT.botId, accountId: 'a' });
    // the caller on another loopback address than HAProxy's own connections to the instances (127.0.0.1)
    expect(await upgradeStatus(`ws://127.0.0.1:${lb.port}/audiosocket/talkdesk/?${query.toString()}`, { localAddress: '127.0.0.3' })).toBe(401);
    const refused = (): Array<Record<string, unknown>> => Object.values(instances).flatMap((i) => i.plugin.logs).filter((l) => l.msg === 'upgrade refused');
    await expect.poll(() => refused().length, { timeout: 2_000 }).toBe(1);
    expect(refused()[0]).toMatchObject({ client: '127.0.0.3', remote: expect.stringMatching(/^(::ffff:)?127\.0\.0\.1:\d+$/) });
  });

  it('drains one instance on SIGTERM: HAProxy takes it out, new calls go to the other, its live calls finish', async () => {
    const cluster = await startCluster();
    const { instances, drachtio, lb } = cluster;
    for (let k = 0; k < 4; k++) await cluster.place();
    const onA = cluster.calls.filter((c) => c.on === 'a');
    expect(onA).toHaveLength(2);
    const a = instances.a;
    const b = instances.b;

    const t0 = performance.now();
    a.plugin.child.kill('SIGTERM');
    await expect.poll(() => ready(a.port), { timeout: 2_000, interval: 50 }).toBe(503);
    // two failed checks 200 ms apart, and HAProxy stops sending it new streams
    await expect.poll(() => lb.serverStates(), { timeout: 3_000, interval: 50 }).toEqual({ a: 'DOWN', b: 'UP' });
    // taken out by its /ready answer, not a refused connection: the process still runs, with its calls
    expect(lb.log).toMatch(/Server talkdesk_gateways\/a is DOWN, reason: Layer7 wrong status, code: 503/);

    // the calls on A still run: audio keeps coming
    const framesBefore = onA.map((c) => c.td.mediaPayloads().length);

    // new calls: all to B, all connected
    const newCalls: LiveCall[] = [];
    for (let k = 0; k < 3; k++) newCalls.push(await cluster.place());
    expect(newCalls.map((c) => c.on)).toEqual(['b', 'b', 'b']);
    expect(onA.map((c) => c.td.mediaPayloads().length).every((n, k) => n > framesBefore[k]! + 5)).toBe(true);
    expect(a.plugin.child.exitCode).toBe(null);

    // the bot ends A's calls well within the grace: stop{ok}, and A, empty, exits 0 without waiting out the grace
    for (const call of onA) await botEnds(call);
    expect(await a.plugin.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - t0).toBeLessThan(GRACE_MS / 2);
    const msgs = a.plugin.logs.map((l) => l.msg);
    expect(msgs).toContain('shut down cleanly');
    expect(msgs).not.toContain('ending the calls still live: stop{error} and BYE');
    expect(msgs).not.toContain('upgrade refused');
    expect(endedCalls(a).map((l) => [l.callSid, l.outcome, l.cause]).sort()).toEqual(sids(onA).map((sid) => [sid, 'ok', 'bot-bye']));

    // B carried on throughout, and ends its calls normally too
    const onB = cluster.calls.filter((c) => c.on === 'b');
    expect(onB).toHaveLength(5);
    for (const call of onB) await botEnds(call);
    expect(await ready(b.port)).toBe(200);
    expect(await metric(b, 'talkdesk_gw_calls_total', { outcome: 'ok' })).toBe(5);
    expect(await metric(b, 'talkdesk_gw_calls_total')).toBe(5);

    // no call lost: every Talkdesk stream got stop{ok}, every bot leg ended
    expect(cluster.calls).toHaveLength(7);
    for (const call of cluster.calls) {
      expect(call.td.received.filter((r) => r.msg.event === 'stop').map((r) => (r.msg.stop as { command?: string }).command)).toEqual(['ok']);
    }
    expect(drachtio.dialogCount).toBe(0);
    // the gateway answered each bot's BYE and sent none of its own (no call was cut by the shutdown)
    expect(drachtio.count('200')).toBe(7);
    expect(drachtio.count('BYE')).toBe(0);
  });
});
