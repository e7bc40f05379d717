import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { MediaClock } from '../../media/clock.js';
import type { RtpSessionStats } from '../../media/rtp-session.js';
import type { Admission } from './admission.js';
import type { AuthFailureCause } from '../talkdesk/auth.js';
import { legStats, type CallSummary } from '../call/call.js';
import type { CallRegistry } from './registry.js';
import { watchInvites, type SipBackend } from '../sip/backend.js';
import { isSipFailure } from '../sip/errors.js';
import type { TalkdeskStream } from '../talkdesk/stream.js';
import type { CertificateReload } from '../talkdesk/tls-reload.js';

export interface MetricsSources {
  registry: CallRegistry;
  clock: MediaClock;
  admission: Admission;
  /** what a leak check reads at the end of a run (bench/): each gauge is left out when its source is not given */
  ports?: { readonly inUse: number };
  watchdog?: { readonly size: number };
  /** the embedded SIP stack's live transactions and dialogs; undefined for a backend that does not count them */
  sipCounts?: () => { transactions: number; dialogs: number } | undefined;
  /** log lines dropped because the log's reader was too far behind (plugin/operations/log-destination.ts) */
  droppedLogLines?: () => number;
}

/** What calls carried, summed: the finished ones when they finish, the live ones at each scrape. */
interface Carried {
  rtpPacketsToBot: number;
  rtpBytesToBot: number;
  rtpPacketsFromBot: number;
  rtpBytesFromBot: number;
  rtpLostFromBot: number;
  /** as the bot's RTCP reports count it: the last report of each leg */
  rtpLostToBot: number;
  rtpLateFromBot: number;
  /** the caller's audio came too late for its frame (the playout buffer's underruns): Talkdesk late */
  rtpLateToBot: number;
  /** what the caller playout buffer did to the caller's frames: sound dropped at its cap, silence added or left out */
  callerSpeechLost: number;
  callerSilenceInserted: number;
  callerSilenceRemoved: number;
  droppedForeign: number;
  droppedMalformed: number;
  droppedUnknownPt: number;
  droppedSrtp: number;
  wsFramesIn: number;
  wsFramesOut: number;
  rtcpToBot: number;
  rtcpFromBot: number;
}

/** One read of the live calls: what they carried, with the finished calls' totals, and their deepest playout buffers. */
interface LiveCalls {
  carried: Carried;
  playoutDelayMs: number;
  maxPlayoutDelayMs: number;
}

const NOTHING_CARRIED: Carried = {
  rtpPacketsToBot: 0,
  rtpBytesToBot: 0,
  rtpPacketsFromBot: 0,
  rtpBytesFromBot: 0,
  rtpLostFromBot: 0,
  rtpLostToBot: 0,
  rtpLateFromBot: 0,
  rtpLateToBot: 0,
  callerSpeechLost: 0,
  callerSilenceInserted: 0,
  callerSilenceRemoved: 0,
  droppedForeign: 0,
  droppedMalformed: 0,
  droppedUnknownPt: 0,
  droppedSrtp: 0,
  wsFramesIn: 0,
  wsFramesOut: 0,
  rtcpToBot: 0,
  rtcpFromBot: 0,
};

function addCarried(into: Carried, talkdesk: TalkdeskStream['stats'], legs: readonly RtpSessionStats[]): void {
  into.wsFramesIn += talkdesk.framesIn;
  into.wsFramesOut += talkdesk.framesOut;
  for (const rtp of legs) addLeg(into, rtp);
}

function addLeg(into: Carried, rtp: RtpSessionStats): void {
  into.rtpPacketsToBot += rtp.packetsSent;
  into.rtpBytesToBot += rtp.bytesSent;
  into.rtpPacketsFromBot += rtp.packetsReceived;
  into.rtpBytesFromBot += rtp.bytesReceived;
  into.rtpLostFromBot += rtp.packetsLost;
  // RFC 3550 lets a cumulative loss go negative (duplicates); as a counter's share it is none
  into.rtpLostToBot += Math.max(0, rtp.rtcp.bot?.cumulativeLost ?? 0);
  into.rtcpToBot += rtp.rtcp.sent;
  into.rtcpFromBot += rtp.rtcp.received;
  into.rtpLateFromBot += rtp.packetsLate;
  into.rtpLateToBot += rtp.playoutUnderruns;
  into.callerSpeechLost += rtp.callerSpeechLostFrames;
  into.callerSilenceInserted += rtp.callerSilenceInsertedFrames;
  into.callerSilenceRemoved += rtp.callerSilenceRemovedFrames;
  into.droppedForeign += rtp.droppedForeign;
  into.droppedMalformed += rtp.droppedMalformed;
  into.droppedUnknownPt += rtp.droppedUnknownPt;
  into.droppedSrtp += rtp.droppedSrtp;
}

/** `le` edges of the media clock's send lateness, ms: its target is < 1 ms, a 20 ms frame late is a lost frame */
const CLOCK_LATENESS_EDGES_MS = [0, 0.5, 1, 2, 5, 10, 20, 50];

/** An INVITE's result as a label: the final status when rejected, else 2xx or why there was none. */
function inviteResultOf(err: unknown): string {
  if (!isSipFailure(err)) return 'error';
  return err.kind === 'rejected' && err.status !== undefined ? String(err.status) : err.kind;
}

/**
 * The gateway's Prometheus metrics, all `talkdesk_gw_*`, in a registry of their own (one per app, so tests can run
 * several). Nothing here runs per packet or per frame: what live calls carried is read from their stats when
 * Prometheus scrapes (collect()), added to the totals of the calls that finished; events (a call's end, an INVITE's
 * result, an auth failure, a certificate reload) are counted when they happen.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly finished: Carried = { ...NOTHING_CARRIED };
  /** the live calls as the scrape in progress read them: every collect() of one scrape reads the same one */
  private scrape: LiveCalls | undefined;

  private readonly callsTotal: Counter<'outcome' | 'cause'>;
  private readonly inviteResults: Counter<'result'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly tlsReloads: Counter<'result'>;
  private readonly teardownFailures: Counter<'step'>;
  private readonly internalErrors: Counter<'kind'>;
  private readonly setupSeconds: Histogram;
  private readonly durationSeconds: Histogram;
  private readonly jitterSeconds: Histogram;
  private readonly botJitterSeconds: Histogram;
  private readonly rttSeconds: Histogram;
  private readonly byeToStopSeconds: Histogram;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    const { registry, clock, admission } = sources;
    collectDefaultMetrics({ register: this.registry, prefix: 'talkdesk_gw_' });

    new Gauge({
      name: 'talkdesk_gw_calls_active',
      help: 'Talkdesk streams being carried now (from the authenticated upgrade to the last released port)',
      registers,
      collect() {
        this.set(registry.size);
      },
    });
    new Gauge({ name: 'talkdesk_gw_calls_max', help: 'MAX_CALLS: the concurrent-call cap', registers }).set(admission.maxCalls);
    new Gauge({
      name: 'talkdesk_gw_ready',
      help: '1 when /ready answers 200 (taking calls), 0 when it answers 429 or 503',
      registers,
      collect() {
        this.set(admission.readiness().status === 200 ? 1 : 0);
      },
    });
    new Gauge({
      name: 'talkdesk_gw_sip_backend_up',
      help: '1 while the SIP backend can place calls (drachtio: connected to drachtio-server), 0 while not: /ready then says 503',
      labelNames: ['backend'],
      registers,
      collect() {
        this.reset();
        this.set({ backend: admission.backend.name }, admission.backend.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'talkdesk_gw_draining',
      help: '1 after SIGTERM/SIGINT: no new calls, live ones finishing',
      registers,
      collect() {
        this.set(admission.draining ? 1 : 0);
      },
    });

    const { droppedLogLines } = sources;
    if (droppedLogLines !== undefined) {
      new Counter({
        name: 'talkdesk_gw_log_lines_dropped_total',
        help: 'Log lines dropped unwritten: stdout\'s reader fell 4 MB behind (the gateway never waits for it)',
        registers,
        collect() {
          this.reset();
          this.inc(droppedLogLines());
        },
      });
    }

    this.callsTotal = new Counter({
      name: 'talkdesk_gw_calls_total',
      help: 'Calls ended, by outcome and kebab-case cause; outcome rejected includes upgrades refused by admission (max-calls, draining)',
      labelNames: ['outcome', 'cause'],
      registers,
    });
    this.inviteResults = new Counter({
      name: 'talkdesk_gw_invite_results_total',
      help: 'INVITEs to the bot by result: 2xx, the final status code, or timeout/canceled/transport/unavailable',
      labelNames: ['result'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'talkdesk_gw_auth_failures_total',
      help: 'Talkdesk upgrades refused by authentication (HTTP 400/401), by reason',
      labelNames: ['reason'],
      registers,
    });
    this.tlsReloads = new Counter({
      name: 'talkdesk_gw_tls_reloads_total',
      help: 'wss certificate reloads (SIGHUP, file change): reloaded, unchanged, or failed (the old pair stays)',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['reloaded', 'unchanged', 'failed']) this.tlsReloads.inc({ result }, 0);
    this.teardownFailures = new Counter({
      name: 'talkdesk_gw_teardown_failures_total',
      help: "A call's release steps that threw (a bug: logged with the call; the steps after them still ran), and ends that overran their deadline (overran-deadline)",
      labelNames: ['step'],
      registers,
    });
    this.internalErrors = new Counter({
      name: 'talkdesk_gw_internal_errors_total',
      help: 'Errors that escaped every call (a bug: logged); the process logs, counts and goes on, so the other calls do',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of ['unhandled-rejection', 'uncaught-exception']) this.internalErrors.inc({ kind }, 0);

    this.setupSeconds = new Histogram({
      name: 'talkdesk_gw_call_setup_seconds',
      help: 'From the authenticated upgrade to the bot answering',
      buckets: [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.durationSeconds = new Histogram({
      name: 'talkdesk_gw_call_duration_seconds',
      help: 'From the authenticated upgrade to the call released',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers,
    });
    this.jitterSeconds = new Histogram({
      name: 'talkdesk_gw_call_rtp_jitter_seconds',
      help: "Largest RFC 3550 interarrival jitter of the bot's audio in a call",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
      registers,
    });
    this.botJitterSeconds = new Histogram({
      name: 'talkdesk_gw_call_bot_reported_jitter_seconds',
      help: "Interarrival jitter of our audio at the bot, from its last RTCP report in a call",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
      registers,
    });
    this.rttSeconds = new Histogram({
      name: 'talkdesk_gw_call_rtt_seconds',
      help: "Round trip to the bot's media, from its RTCP reports (RFC 3550 §6.4.1), the last of a call",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
      registers,
    });
    this.byeToStopSeconds = new Histogram({
      name: 'talkdesk_gw_bot_bye_to_stop_seconds',
      help: "From the bot's BYE (or REFER) to our stop to Talkdesk, farewell drain included",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    });

    /** The live calls as this scrape read them, or read now for a collect() outside text() */
    const live = (): LiveCalls => this.scrape ?? this.readLiveCalls();
    /** A counter of what calls carried; with no label, its one series is the first entry's value. */
    const carried = (name: string, help: string, label: string | undefined, series: ReadonlyArray<[string, keyof Carried]>): void => {
      new Counter({
        name,
        help,
        labelNames: label === undefined ? [] : [label],
        registers,
        collect() {
          const now = live().carried;
          this.reset();
          for (const [value, key] of series) this.inc(label === undefined ? {} : { [label]: value }, now[key]);
        },
      });
    };
    carried('talkdesk_gw_rtp_packets_total', 'RTP packets to and from the bot', 'direction', [
      ['to_bot', 'rtpPacketsToBot'],
      ['from_bot', 'rtpPacketsFromBot'],
    ]);
    carried('talkdesk_gw_rtp_bytes_total', 'RTP bytes (UDP payload, RTP header included) to and from the bot', 'direction', [
      ['to_bot', 'rtpBytesToBot'],
      ['from_bot', 'rtpBytesFromBot'],
    ]);
    carried(
      'talkdesk_gw_rtp_lost_packets_total',
      "RTP packets lost on the way: from_bot as we count them (RFC 3550 A.3), to_bot as the bot's RTCP reports say (the last report of each call)",
      'direction',
      [
        ['from_bot', 'rtpLostFromBot'],
        ['to_bot', 'rtpLostToBot'],
      ],
    );
    carried('talkdesk_gw_rtcp_packets_total', 'RTCP compound packets: our reports to the bot, and its reports taken', 'direction', [
      ['to_bot', 'rtcpToBot'],
      ['from_bot', 'rtcpFromBot'],
    ]);
    carried(
      'talkdesk_gw_rtp_late_frames_total',
      "to_bot: times the caller's audio came too late for its 20 ms frame (silence went instead; the audio played when it came); from_bot: packets behind a later one",
      'direction',
      [
        ['to_bot', 'rtpLateToBot'],
        ['from_bot', 'rtpLateFromBot'],
      ],
    );
    carried(
      'talkdesk_gw_caller_speech_lost_frames_total',
      "Caller frames (20 ms) that held sound and never reached the bot: dropped at the playout buffer's cap (MAX_PLAYOUT_MS)",
      undefined,
      [['', 'callerSpeechLost']],
    );
    carried(
      'talkdesk_gw_caller_silence_frames_total',
      "Silence the WS→RTP playout buffer added (inserted: the caller's audio was late, or a pause stretched to rebuild its cushion) or left out (removed: silent caller frames, to take delay back)",
      'action',
      [
        ['inserted', 'callerSilenceInserted'],
        ['removed', 'callerSilenceRemoved'],
      ],
    );
    carried('talkdesk_gw_rtp_dropped_packets_total', 'Packets to our RTP ports that were not the bot’s audio or DTMF', 'reason', [
      ['foreign-source', 'droppedForeign'],
      ['malformed', 'droppedMalformed'],
      ['unknown-payload-type', 'droppedUnknownPt'],
      ['srtp', 'droppedSrtp'],
    ]);
    carried('talkdesk_gw_ws_frames_total', 'Talkdesk WebSocket frames received (in) and sent (out)', 'direction', [
      ['in', 'wsFramesIn'],
      ['out', 'wsFramesOut'],
    ]);

    new Counter({
      name: 'talkdesk_gw_media_clock_skipped_frames_total',
      help: 'Frames the media clock skipped after falling more than 200 ms behind (event loop blocked)',
      registers,
      collect() {
        this.reset();
        this.inc(clock.stats.skippedFrames);
      },
    });
    this.registry.registerMetric(clockLatenessHistogram(clock));

    // What must drop back to 0 once every call has ended: read at scrape time, so a leak check (bench/) can ask the
    // process itself. The event loop's own handles are the default nodejs_active_resources{type}.
    new Gauge({
      name: 'talkdesk_gw_media_clock_sinks',
      help: 'RTP senders on the shared media clock now (one per connected call leg)',
      registers,
      collect() {
        this.set(clock.size);
      },
    });
    let loopSince = performance.eventLoopUtilization();
    new Gauge({
      name: 'talkdesk_gw_event_loop_utilization',
      help: 'Share of the time since the previous scrape that the event loop was not waiting for I/O (0-1): the load on the one thread that sends every call\'s RTP on time',
      registers,
      collect() {
        const now = performance.eventLoopUtilization();
        this.set(performance.eventLoopUtilization(now, loopSince).utilization);
        loopSince = now;
      },
    });
    new Gauge({
      name: 'talkdesk_gw_media_clock_busiest_step_sinks',
      help: 'RTP senders in the busiest of the clock\'s 2 ms steps now: sinks_total / 10 when spread evenly; far more means their frames queue behind each other',
      registers,
      collect() {
        this.set(clock.busiestSlot);
      },
    });
    const { ports, watchdog, sipCounts } = sources;
    if (ports !== undefined) {
      new Gauge({
        name: 'talkdesk_gw_rtp_ports_in_use',
        help: 'RTP ports taken from the pool now (bound sockets)',
        registers,
        collect() {
          this.set(ports.inUse);
        },
      });
    }
    if (watchdog !== undefined) {
      new Gauge({
        name: 'talkdesk_gw_watchdog_calls',
        help: "Calls in the watchdog's media-timeout sweep now",
        registers,
        collect() {
          this.set(watchdog.size);
        },
      });
    }
    if (sipCounts !== undefined && sipCounts() !== undefined) {
      const gauge = (name: string, help: string, key: 'transactions' | 'dialogs'): void => {
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(sipCounts()?.[key] ?? 0);
          },
        });
      };
      gauge('talkdesk_gw_sip_transactions', 'SIP transactions alive now in the embedded stack (they linger up to 32 s after a call, RFC 3261 timers)', 'transactions');
      gauge('talkdesk_gw_sip_dialogs', 'SIP dialogs alive now in the embedded stack', 'dialogs');
    }
    const playoutGauge = (name: string, help: string, key: 'playoutDelayMs' | 'maxPlayoutDelayMs'): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(live()[key] / 1000);
        },
      });
    };
    playoutGauge(
      'talkdesk_gw_playout_delay_seconds',
      'Caller audio waiting in the WS→RTP playout buffer now, in the live call where it is most',
      'playoutDelayMs',
    );
    playoutGauge(
      'talkdesk_gw_playout_delay_max_seconds',
      'Most caller audio that waited in the WS→RTP playout buffer of any live call since the bot answered; finished calls log theirs (rtp.maxPlayoutDelayMs)',
      'maxPlayoutDelayMs',
    );
  }

  /** The exposition text for GET /metrics. */
  async text(): Promise<string> {
    this.scrape = this.readLiveCalls();
    try {
      return await this.registry.metrics();
    } finally {
      this.scrape = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A call released everything: its counts join the totals in the same tick the registry forgets it. */
  callFinished(summary: CallSummary): void {
    this.callsTotal.inc({ outcome: summary.outcome, cause: summary.cause });
    const legs = legStats(summary);
    addCarried(this.finished, summary.talkdesk, legs);
    if (summary.setupMs !== undefined) this.setupSeconds.observe(summary.setupMs / 1000);
    this.durationSeconds.observe(summary.durationMs / 1000);
    for (const rtp of legs) {
      if (rtp.packetsReceived > 0) this.jitterSeconds.observe(rtp.maxJitterMs / 1000);
      const bot = rtp.rtcp.bot;
      if (bot !== undefined) this.botJitterSeconds.observe(bot.jitterMs / 1000);
      if (bot?.rttMs !== undefined) this.rttSeconds.observe(bot.rttMs / 1000);
    }
    if (summary.byeToStopMs !== undefined) this.byeToStopSeconds.observe(summary.byeToStopMs / 1000);
    for (const step of summary.teardownFailures ?? []) this.teardownFailures.inc({ step });
  }

  /** What escaped every call's own guard: main.ts's process-level handlers. */
  internalError(kind: 'unhandled-rejection' | 'uncaught-exception'): void {
    this.internalErrors.inc({ kind });
  }

  /** An upgrade admission refused (max-calls, draining, backend not ready): a rejected call that never began. */
  upgradeRefused(cause: string): void {
    this.callsTotal.inc({ outcome: 'rejected', cause });
  }

  authFailure(cause: AuthFailureCause): void {
    this.authFailures.inc({ reason: cause });
  }

  tlsReload(result: CertificateReload): void {
    this.tlsReloads.inc({ result: !result.ok ? 'failed' : result.changed ? 'reloaded' : 'unchanged' });
  }

  /** The backend the calls use, with every INVITE's result counted when it settles. */
  /** `backend` with each INVITE's result counted once */
  instrument(backend: SipBackend): SipBackend {
    return watchInvites(backend, (request) => {
      const outgoing = backend.invite(request);
      outgoing.answered.then(
        () => this.inviteResults.inc({ result: '2xx' }),
        (err: unknown) => this.inviteResults.inc({ result: inviteResultOf(err) }),
      );
      return outgoing;
    });
  }

  /**
   * Every live call's stats, read once: what they carried (added to the finished calls' totals) and the deepest
   * playout buffers. Read once per scrape, not once per metric: at 400 calls the three passes it was made each scrape
   * a busy stretch of 28-30 ms of the event loop, stats objects and the GC after them; one pass, 13-15 ms
   * (docs/benchmarks/clock-under-load.md §16).
   */
  private readLiveCalls(): LiveCalls {
    const live: LiveCalls = { carried: { ...this.finished }, playoutDelayMs: 0, maxPlayoutDelayMs: 0 };
    for (const call of this.sources.registry.values()) {
      const { talkdesk, rtp } = call.carried;
      addCarried(live.carried, talkdesk, rtp);
      for (const leg of rtp) {
        live.playoutDelayMs = Math.max(live.playoutDelayMs, leg.playoutDelayMs);
        live.maxPlayoutDelayMs = Math.max(live.maxPlayoutDelayMs, leg.maxPlayoutDelayMs);
      }
    }
    return live;
  }
}

/**
 * The media clock's send lateness as a Prometheus histogram. The clock keeps its own fixed-bucket histogram (its
 * record() is allocation-free on every step); this reads it at scrape time, so no prom-client call is on the clock.
 */
function clockLatenessHistogram(clock: MediaClock): Metric {
  const name = 'talkdesk_gw_media_clock_lateness_seconds';
  const help = "How late the shared media clock sent each call's 20 ms frame against its ideal time";
  const read = async () => {
    const { counts, count, sumMs } = clock.latenessBuckets(CLOCK_LATENESS_EDGES_MS);
    const values = [
      ...CLOCK_LATENESS_EDGES_MS.map((edge, i) => ({ metricName: `${name}_bucket`, labels: { le: edge / 1000 }, value: counts[i]! })),
      { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count },
      { metricName: `${name}_sum`, labels: {}, value: sumMs / 1000 },
      { metricName: `${name}_count`, labels: {}, value: count },
    ];
    return { name, help, type: 'histogram', values, aggregator: 'sum' };
  };
  // prom-client's registry only calls get() (and reads name/type); its Metric type lists its own classes
  return { name, help, type: 'histogram', aggregator: 'sum', get: read } as unknown as Metric;
}
