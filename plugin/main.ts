import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { appConfigFile, loadConfig } from '../config/load.js';
import { startApp } from './app.js';
import { logDestination } from './operations/log-destination.js';
import { oneCoreGcAdvice } from './operations/one-core.js';
import { exitOnShutdownSignals } from './operations/shutdown.js';

/** `npm start`: load jambonz-app.json (or APP_CONFIG), start, and shut down cleanly on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const file = appConfigFile(process.env);
  const loaded = loadConfig({ file, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(`${file}: the gateway cannot start:\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    process.exit(1);
  }
  const { config } = loaded;
  const logs = logDestination();
  const log = pino({ level: config.logLevel, base: { service: 'talkdesk-ccai-gateway' } }, logs.stream);
  if (config.usesExampleSecret) {
    log.warn('BOTS still holds the shipped EXAMPLE bot secret: listening on loopback only until you set your own');
  }
  for (const warning of loaded.warnings) log.warn(warning);
  const gcAdvice = oneCoreGcAdvice(availableParallelism(), process.execArgv);
  if (gcAdvice !== undefined) log.warn(gcAdvice);

  const app = await startApp(config, log, loaded.appJson, { droppedLogLines: logs.droppedLines }).catch((err: Error) => {
    log.fatal(err.message);
    process.exit(1);
  });

  // Each call guards its own handlers and ends itself on a bug of ours. What still escapes is logged and counted, and
  // the process goes on: Node 20 would otherwise end it, and with it every live call, for one call's mistake.
  process.on('unhandledRejection', (reason) => {
    app.metrics.internalError('unhandled-rejection');
    log.error({ err: reason }, 'unhandled rejection (a bug): logged, counted, the gateway goes on');
  });
  process.on('uncaughtException', (err) => {
    app.metrics.internalError('uncaught-exception');
    log.error({ err }, 'uncaught exception (a bug): logged, counted, the gateway goes on');
  });

  // certbot/cert-manager renewals are also picked up by watching the files; SIGHUP is the explicit nudge (a deploy
  // hook's `kill -HUP`). Without a listener Node would end the process on SIGHUP.
  process.on('SIGHUP', () => {
    void app.reloadCertificate('SIGHUP').then((result) => {
      if (!result.ok && !config.listen.tlsCertFile) log.info({ signal: 'SIGHUP' }, result.reason);
    });
  });
  exitOnShutdownSignals(process, app, { graceMs: config.limits.shutdownGraceMs, log, exit: (code) => process.exit(code) });
}

void main();
