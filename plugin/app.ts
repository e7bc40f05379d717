import type { Logger } from 'pino';
import type { AppJson } from '../config/app-json.js';
import type { PluginConfig } from '../config/schema.js';
import { MediaClock } from '../media/clock.js';
import { RtpPortPool } from '../media/port-pool.js';
import { Admission } from './operations/admission.js';
import { Call } from './call/call.js';
import { CallWatchdog } from './call/watchdog.js';
import { CallEnds } from './call/end.js';
import { compileRules } from './call/escalation.js';
import { startJambonzService, type JambonzService } from './jambonz/service.js';
import { GatewayMetrics } from './operations/metrics.js';
import { startMetricsServer, type MetricsServer } from './operations/metrics-server.js';
import { portalSchema } from './jambonz/portal-schema.js';
import { CallRegistry } from './operations/registry.js';
import { createTalkdeskServer, type TalkdeskServer } from './talkdesk/server.js';
import type { SipBackend } from './sip/backend.js';
import { DrachtioSipBackend } from './sip/drachtio/backend.js';
import { EmbeddedSipBackend } from './sip/embedded/backend.js';
import { hostPort } from './sip/invite-target.js';

export interface RunningApp {
  /** the Talkdesk-facing port actually bound (LISTEN_PORT 0 picks one) */
  port: number;
  registry: CallRegistry;
  backend: SipBackend;
  ports: RtpPortPool;
  clock: MediaClock;
  /** the one sweep over every call's media timeouts and length */
  watchdog: CallWatchdog;
  /** the metrics listener's port actually bound (METRICS_PORT 0 picks one) */
  metricsPort: number;
  /** the jambonz service listener's port, when JAMBONZ_SERVICE_PATH turns it on */
  jambonzPort: number | undefined;
  metrics: GatewayMetrics;
  /** draining, the call cap and the backend: what /ready answers and upgrades are admitted by */
  admission: Admission;
  /**
   * SIGTERM: stop accepting (upgrades 503, /ready 503), give live calls up to `graceMs` to finish, end the rest
   * (stop{error} + BYE, cause shutdown), release everything. Called again while draining: ends the rest at once.
   */
  drain(graceMs: number): Promise<void>;
  /** drain(0): stop accepting, end live calls (stop{error} + BYE), release everything */
  stop(): Promise<void>;
  /** re-read the wss certificate and key (SIGHUP); live sockets keep theirs */
  reloadCertificate: TalkdeskServer['reloadCertificate'];
}

function createBackend(config: PluginConfig, log: Logger): SipBackend {
  switch (config.sip.backend) {
    case 'embedded':
      return new EmbeddedSipBackend({
        bindAddress: config.sip.bindAddress,
        port: config.sip.port,
        advertisedAddress: config.sip.advertisedAddress,
        transport: config.sip.ccaiTransport,
        tls: config.sip.tls,
        ccaiHost: config.sip.ccaiHost,
        ccaiSourceAddresses: config.sip.ccaiSourceAddresses,
        dnsServers: config.sip.dnsServers,
        targetTimeoutMs: config.sip.targetTimeoutMs,
        log: log.child({ component: 'sip' }),
      });
    case 'drachtio':
      return new DrachtioSipBackend(DrachtioSipBackend.optionsFrom(config, log.child({ component: 'sip' })));
  }
}

/**
 * JAMBONZ_SERVICE_PATH set: the jambonz service on its own private listener, serving `appJson` (the loaded
 * jambonz-app.json, secrets masked) to the portal; at most MAX_CALLS sockets. Empty (the default): none.
 */
async function startJambonz(config: PluginConfig, log: Logger, appJson: AppJson): Promise<JambonzService | undefined> {
  const { servicePath, host, port, sources } = config.jambonz;
  if (servicePath === '') return undefined;
  const portal = portalSchema(appJson, servicePath);
  if (portal.dropped.length > 0) {
    log.warn({ dropped: portal.dropped }, 'settings left out of the jambonz portal schema: keys must match ^[a-zA-Z0-9_]+$');
  }
  const portalBody = JSON.stringify(portal.schema);
  return startJambonzService({ host, port, servicePath, sources, maxSockets: config.limits.maxCalls, portalBody, log, sip: config.sip });
}

export interface AppOptions {
  /** wraps the SIP backend every call uses: `npm run probe` watches its call's SIP through it */
  observeSip?: (backend: SipBackend) => SipBackend;
  /** log lines the log's destination dropped (plugin/operations/log-destination.ts), for the metrics */
  droppedLogLines?: () => number;
}

/** Wires one process: a shared media clock and port pool, a SIP backend, the registry and the Talkdesk server. */
export async function startApp(config: PluginConfig, log: Logger, appJson: AppJson, options: AppOptions = {}): Promise<RunningApp> {
  const clock = new MediaClock({ log: log.child({ component: 'media-clock' }) });
  const ports = new RtpPortPool({ bindAddress: config.rtp.bindAddress, min: config.rtp.portMin, max: config.rtp.portMax });
  const escalation = compileRules(config.escalation.rules, config.escalation.defaultRingGroup);
  const registry = new CallRegistry();
  const watchdog = new CallWatchdog({ log });
  const backend = createBackend(config, log);
  await backend.start();
  const admission = new Admission({ maxCalls: config.limits.maxCalls, liveCalls: () => registry.size, backend });
  const metrics = new GatewayMetrics({
    registry,
    clock,
    admission,
    ports,
    watchdog,
    sipCounts: () => (backend instanceof EmbeddedSipBackend ? backend.activeCounts : undefined),
    droppedLogLines: options.droppedLogLines,
  });
  const callBackend = metrics.instrument(options.observeSip?.(backend) ?? backend);

  const server = createTalkdeskServer(config, log, (ws, upgrade) => {
    const call = new Call({ config, backend: callBackend, clock, ports, escalation, watchdog, log }, ws, upgrade, registry.nextId());
    registry.add(call);
    // after registry.add: both run in the tick the call finishes, so a scrape never sees it twice or not at all
    void call.finished.then((summary) => metrics.callFinished(summary));
  }, {
    admission,
    onUpgradeRefused: (cause) => metrics.upgradeRefused(cause),
    onAuthFailure: (cause) => metrics.authFailure(cause),
    onTlsReload: (result) => metrics.tlsReload(result),
  });
  let port: number;
  let metricsServer: MetricsServer;
  let jambonz: JambonzService | undefined;
  try {
    port = await server.listen();
    metricsServer = await startMetricsServer({
      host: config.metrics.host,
      port: config.metrics.port,
      metrics,
      readiness: () => admission.readiness(),
      log,
    });
    const started = metricsServer;
    jambonz = await startJambonz(config, log, appJson).catch(async (err: unknown) => {
      await started.close();
      throw err;
    });
  } catch (err) {
    await server.close();
    await backend.stop();
    throw err;
  }
  log.info(
    { port, tls: Boolean(config.listen.tlsCertFile), sipBackend: backend.name, ccai: hostPort(config.sip.ccaiHost, config.sip.ccaiPort) },
    'talkdesk gateway listening',
  );

  let stopping: Promise<void> | undefined;
  /** while waiting out the grace period: stop waiting */
  let cutShort: (() => void) | undefined;
  const drain = (graceMs: number): Promise<void> => {
    if (stopping) {
      cutShort?.();
      return stopping;
    }
    admission.startDraining();
    stopping = (async () => {
      if (registry.size > 0 && graceMs > 0) {
        log.info({ liveCalls: registry.size, graceMs }, 'draining: no new calls, live calls may finish');
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            registry.off('idle', done);
            cutShort = undefined;
            resolve();
          };
          const timer = setTimeout(done, graceMs);
          registry.on('idle', done);
          cutShort = done;
        });
      }
      if (registry.size > 0) log.info({ liveCalls: registry.size }, 'ending the calls still live: stop{error} and BYE');
      const closed = server.close();
      await registry.endAll(CallEnds.error('shutdown', 'gateway shutting down'));
      await closed;
      await jambonz?.close();
      await metricsServer.close();
      await backend.stop();
    })();
    return stopping;
  };
  return {
    port,
    registry,
    backend,
    ports,
    clock,
    watchdog,
    metricsPort: metricsServer.port,
    jambonzPort: jambonz?.port,
    metrics,
    admission,
    reloadCertificate: (trigger) => server.reloadCertificate(trigger),
    drain,
    stop: () => drain(0),
  };
}
