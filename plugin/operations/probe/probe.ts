import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { AppJson } from '../../../config/app-json.js';
import type { PluginConfig } from '../../../config/schema.js';
import { parseAnswer } from '../../../media/sdp.js';
import { startApp, type RunningApp } from '../../app.js';
import type { CallSummary } from '../../call/call.js';
import { parseSipUri } from '../../sip/embedded/uri.js';
import { TALKDESK_PATH } from '../../talkdesk/server.js';
import { voiceStreamQuery } from '../../talkdesk/studio-url.js';
import { ProbeCaller, type CallerResult } from './caller.js';
import type { Expectation, ProbeOptions } from './options.js';
import { SipLadder, type LadderStep } from './sip-ladder.js';

/** Everything `npm run probe` found out about one call: printed as a ladder, or as this JSON with --json. */
export interface ProbeReport {
  requestUri?: string;
  ladder: LadderStep[];
  /** the 2xx's audio stream */
  media?: {
    codec: 'PCMU/8000';
    payloadType: 0;
    dtmfPayloadType?: number;
    address: string;
    port: number;
    srtp: boolean;
    rtcp: string;
  };
  rtp?: {
    toBot: { packets: number; lostAtBot?: number; jitterAtBotMs?: number; rttMs?: number };
    fromBot: { packets: number; lost: number; jitterMs: number };
    /** from the 2xx to the first `media` frame of the bot's audio at Talkdesk */
    firstBotAudioMs?: number;
    digitsFromBot: string[];
    digitsToBot: number;
  };
  ending: {
    /** the `stop` frame Talkdesk got, exactly; absent when the caller hung up first */
    stop?: Record<string, unknown>;
    callerHungUp: boolean;
    outcome?: string;
    cause?: string;
    ringGroup?: string;
    /** which escalation rule matched, as the call ended says it */
    detail?: string;
  };
  /** warnings and errors the gateway logged during the call */
  notes: string[];
  recording?: { path: string; bytes: number };
  verdict: { pass: boolean; reason: string };
}

export interface ProbeRun {
  report: ProbeReport;
  /** the bot's audio as Talkdesk got it, for --record */
  botAudio: Buffer;
}

/** After the answer: the first digit, then one per gap (each is 100 ms of RFC 4733 events plus a pause). */
const FIRST_DIGIT_MS = 500;
const DIGIT_GAP_MS = 300;
/** Past the hang-up: how long the end may take before the probe gives up on the socket. */
const END_GRACE_MS = 40_000;

/**
 * One real call through the gateway's own pipeline: the app (call, bot side, the configured SIP backend) started in
 * this process on loopback ports, a Talkdesk caller (ProbeCaller) on its WebSocket, the SIP watched through the
 * call's port (SipLadder). The configuration is the gateway's, with the listeners moved to free loopback ports so a
 * running gateway on this host is not disturbed.
 */
export async function runProbe(base: PluginConfig, appJson: AppJson, opts: ProbeOptions, prompt: Buffer): Promise<ProbeRun> {
  const setup = probeSetup(base, opts);
  const ladder = new SipLadder(interestingHeaders(base));
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  const failed = (reason: string): ProbeRun => ({ report: { ladder: ladder.steps, ending: { callerHungUp: false }, notes: notes(lines), verdict: { pass: false, reason } }, botAudio: Buffer.alloc(0) });
  if (!setup.ok) return failed(setup.error);

  let app: RunningApp;
  try {
    app = await startApp(setup.config, log, appJson, { observeSip: (backend) => ladder.watch(backend) });
  } catch (err) {
    return failed(`the gateway could not start: ${(err as Error).message}`);
  }

  const caller = new ProbeCaller(`ws://127.0.0.1:${app.port}${TALKDESK_PATH}?${voiceStreamQuery(setup.bot, { sipuri: setup.sipuri })}`, prompt, {
    accountSid: base.talkdeskAccountAllowlist[0] ?? 'probe',
    callSid: `CAprobe${Date.now()}`,
  });
  const timers: NodeJS.Timeout[] = [];
  ladder.onAnswered(() => {
    [...opts.dtmf].forEach((digit, i) => timers.push(setTimeout(() => caller.sendDigit(digit), FIRST_DIGIT_MS + i * DIGIT_GAP_MS)));
    timers.push(setTimeout(() => caller.hangUp(), opts.hangupAfterMs));
  });
  // a bot that never answers ends the call at INVITE_TIMEOUT_MS; this only guards against a gateway that hangs
  timers.push(setTimeout(() => caller.close(), base.sip.inviteTimeoutMs + opts.hangupAfterMs + END_GRACE_MS));

  let result: CallerResult | undefined;
  let callerError: string | undefined;
  try {
    result = await caller.done;
  } catch (err) {
    callerError = (err as Error).message;
  } finally {
    for (const t of timers) clearTimeout(t);
    await app.stop();
  }
  if (result === undefined) return failed(callerError ?? 'the caller never connected');

  const summary = lines.find((l) => l['msg'] === 'call ended') as (CallSummary & Record<string, unknown>) | undefined;
  const answered = lines.find((l) => l['msg'] === 'bot answered');
  const report: ProbeReport = {
    ...(ladder.requestUri === undefined ? {} : { requestUri: ladder.requestUri }),
    ladder: ladder.steps,
    ...mediaOf(ladder.answerSdp, answered?.['srtp'] === true),
    ...rtpOf(summary, ladder, result, lines),
    ending: {
      ...(result.stop === undefined ? {} : { stop: result.stop }),
      callerHungUp: result.hungUp,
      ...pick(summary, ['outcome', 'cause', 'ringGroup', 'detail']),
    },
    notes: notes(lines),
    verdict: judge(opts.expect, result, ladder),
  };
  return { report, botAudio: result.botAudio };
}

type Setup = { ok: true; config: PluginConfig; sipuri: string; bot: PluginConfig['bots'][number] } | { ok: false; error: string };

/** The gateway's configuration for the probe: loopback listeners on free ports, one call, and --target applied. */
function probeSetup(base: PluginConfig, opts: ProbeOptions): Setup {
  const bot = opts.botId === undefined ? base.bots[0] : base.bots.find((b) => b.botId === opts.botId);
  if (bot === undefined) return { ok: false, error: `no bot ${JSON.stringify(opts.botId)} in BOTS (it lists ${base.bots.map((b) => b.botId).join(', ')})` };
  const sip: PluginConfig['sip'] = { ...base.sip, port: 0, tls: { ...base.sip.tls, port: 0 } };
  let sipuri = opts.sipuri ?? '';
  if (opts.target !== undefined) {
    const uri = parseSipUri(opts.target);
    if (uri === undefined || uri.user === undefined) return { ok: false, error: `--target ${opts.target}: not a SIP URI with a user part (sip:+1…@host)` };
    const transport = uri.params['transport']?.toLowerCase() ?? (uri.scheme === 'sips' ? 'tls' : base.sip.ccaiTransport);
    if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') return { ok: false, error: `--target ${opts.target}: transport ${transport} (udp, tcp or tls)` };
    if (uri.scheme === 'sips' && transport !== 'tls') return { ok: false, error: `--target ${opts.target}: sips needs transport tls` };
    sipuri = decodeURIComponent(uri.user);
    sip.ccaiHost = uri.host.replace(/^\[(.*)\]$/, '$1');
    sip.ccaiTransport = transport;
    sip.ccaiScheme = uri.scheme;
    if (uri.port === undefined) delete sip.ccaiPort;
    else sip.ccaiPort = uri.port;
  }
  return {
    ok: true,
    sipuri,
    bot,
    config: {
      ...base,
      sip,
      listen: { host: '127.0.0.1', port: 0, trustedProxies: [] },
      metrics: { host: '127.0.0.1', port: 0 },
      jambonz: { ...base.jambonz, servicePath: '' },
      limits: { ...base.limits, maxCalls: 1 },
    },
  };
}

/** The headers the ladder shows on the bot's BYE and REFER: the escalation rules' and the usual carriers. */
function interestingHeaders(config: PluginConfig): Set<string> {
  return new Set(['user-to-user', 'reason', 'refer-to', 'referred-by', ...config.escalation.rules.map((r) => r.header.toLowerCase())]);
}

function mediaOf(sdp: string | undefined, srtp: boolean): Pick<ProbeReport, 'media'> {
  if (sdp === undefined) return {};
  const answer = parseAnswer(sdp);
  if (!answer.ok) return {};
  const a = answer.value;
  const rtcp = a.rtcpMux ? 'muxed on the RTP port (a=rtcp-mux)' : `port ${a.rtcpPort ?? a.port + 1}`;
  return {
    media: { codec: 'PCMU/8000', payloadType: 0, ...(a.dtmfPayloadType === undefined ? {} : { dtmfPayloadType: a.dtmfPayloadType }), address: a.address, port: a.port, srtp, rtcp },
  };
}

function rtpOf(summary: CallSummary | undefined, ladder: SipLadder, result: CallerResult, lines: Array<Record<string, unknown>>): Pick<ProbeReport, 'rtp'> {
  const rtp = summary?.rtp;
  if (rtp === undefined) return {};
  const bot = rtp.rtcp.bot;
  const answeredAt = ladder.answeredAtMs;
  return {
    rtp: {
      toBot: {
        packets: rtp.packetsSent,
        ...(bot === undefined ? {} : { lostAtBot: bot.cumulativeLost, jitterAtBotMs: bot.jitterMs }),
        ...(bot?.rttMs === undefined ? {} : { rttMs: bot.rttMs }),
      },
      fromBot: { packets: rtp.packetsReceived, lost: rtp.packetsLost, jitterMs: rtp.maxJitterMs },
      ...(result.firstAudioAt === undefined || answeredAt === undefined ? {} : { firstBotAudioMs: Math.round(result.firstAudioAt - ladder.startedAt - answeredAt) }),
      digitsFromBot: lines.filter((l) => String(l['msg']).startsWith('dtmf from bot')).map((l) => String(l['digit'])),
      digitsToBot: summary?.digitsToBot ?? 0,
    },
  };
}

/** Exit 0 when the call ended as expected; with no expectation, when the bot answered. */
function judge(expect: Expectation | undefined, result: CallerResult, ladder: SipLadder): ProbeReport['verdict'] {
  const stop = result.stop?.['stop'] as { command?: unknown; ringGroup?: unknown } | undefined;
  const got = stop === undefined ? (result.hungUp ? 'no stop (the caller hung up first)' : 'no stop') : `stop{${String(stop.command)}${stop.ringGroup == null ? '' : `, ringGroup ${String(stop.ringGroup)}`}}`;
  if (expect === undefined) {
    return ladder.answeredAtMs === undefined ? { pass: false, reason: `the bot did not answer; ${got}` } : { pass: true, reason: `the bot answered; ${got}` };
  }
  const wanted = expect.command === 'escalate' && expect.ringGroup !== undefined ? `stop{escalate, ringGroup ${expect.ringGroup}}` : `stop{${expect.command}}`;
  const pass = stop?.command === expect.command && (expect.command !== 'escalate' || expect.ringGroup === undefined || stop.ringGroup === expect.ringGroup);
  return { pass, reason: pass ? `as expected: ${got}` : `expected ${wanted}, got ${got}` };
}

function notes(lines: Array<Record<string, unknown>>): string[] {
  return lines
    .filter((l) => typeof l['level'] === 'number' && l['level'] >= 40)
    .map((l) => (l['reason'] === undefined ? String(l['msg']) : `${String(l['msg'])}: ${String(l['reason'])}${l['from'] === undefined ? '' : ` from ${String(l['from'])}`}`));
}

function pick(from: Record<string, unknown> | undefined, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) if (from?.[key] !== undefined) out[key] = String(from[key]);
  return out;
}
