import type { Logger } from 'pino';
import type { AppJson } from '../config/app-json.js';
import type { PluginConfig } from '../config/schema.js';
import { MediaClock } from '../media/clock.js';
import { RtpPortPool } from '../media/port-pool.js';
import { Call } from './call.js';
import { CallWatchdog } from './call-watchdog.js';
import { CallEnds } from './call-end.js';
import { compileRules } from './escalation.js';
import { CallRegistry } from './registry.js';
import { createTalkdeskServer, type TalkdeskServer } from './server.js';
import type { SipBackend } from './sip/backend.js';
import { DrachtioSipBackend } from './sip/drachtio/backend.js';
import { EmbeddedSipBackend } from './sip/embedded/backend.js';

export interface RunningApp {
  /** the Talkdesk-facing port actually bound (LISTEN_PORT 0 picks one) */
  port: number;
  registry: CallRegistry;
  backend: SipBackend;
  ports: RtpPortPool;
  clock: MediaClock;
  /** stop accepting, end live calls (stop{error} + BYE), release everything */
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
        log: log.child({ component: 'sip' }),
      });
    case 'drachtio':
      return new DrachtioSipBackend(DrachtioSipBackend.optionsFrom(config, log.child({ component: 'sip' })));
  }
}

/**
 * Wires one process: a shared media clock and port pool, a SIP backend, the registry and the Talkdesk server.
 * `appJson` (the loaded jambonz-app.json) is what the jambonz portal reads on the service path.
 */
export async function startApp(config: PluginConfig, log: Logger, appJson: AppJson): Promise<RunningApp> {
  const clock = new MediaClock();
  const ports = new RtpPortPool({ bindAddress: config.rtp.bindAddress, min: config.rtp.portMin, max: config.rtp.portMax });
  const escalation = compileRules(config.escalation.rules, config.escalation.defaultRingGroup);
  const registry = new CallRegistry();
  const watchdog = new CallWatchdog({ log });
  const backend = createBackend(config, log);
  await backend.start();

  const server = createTalkdeskServer(config, log, (ws, upgrade) => {
    const call = new Call({ config, backend, clock, ports, escalation, watchdog, log }, ws, upgrade, registry.nextId());
    registry.add(call);
  }, { appJson });
  let port: number;
  try {
    port = await server.listen();
  } catch (err) {
    await backend.stop();
    throw err;
  }
  log.info(
    { port, tls: Boolean(config.listen.tlsCertFile), sipBackend: backend.name, ccai: `${config.sip.ccaiHost}:${config.sip.ccaiPort}` },
    'talkdesk gateway listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    port,
    registry,
    backend,
    ports,
    clock,
    reloadCertificate: (trigger) => server.reloadCertificate(trigger),
    stop: () =>
      (stopping ??= (async () => {
        const closed = server.close();
        await registry.endAll(CallEnds.error('shutdown', 'gateway shutting down'));
        await closed;
        await backend.stop();
      })()),
  };
}
