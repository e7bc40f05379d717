import type { Logger } from 'pino';
import type { PluginConfig } from '../../../config/schema.js';
import { DrachtioSipBackend } from '../../sip/drachtio/backend.js';
import { fail, ok, type Check } from './check.js';

/**
 * SIP_BACKEND=drachtio: the gateway's own start-up path (DrachtioSipBackend.start) connects to DRACHTIO_HOST:PORT,
 * authenticates with DRACHTIO_SECRET and checks that drachtio-server has bound the CCAI_SIP_TRANSPORT transport,
 * each failure naming its setting; then the connection is closed.
 */
export async function drachtioChecks(config: PluginConfig, log: Logger, timeoutMs: number): Promise<Check[]> {
  const { host, port } = config.drachtio;
  let backend: DrachtioSipBackend;
  try {
    backend = new DrachtioSipBackend({ ...DrachtioSipBackend.optionsFrom(config, log), connectTimeoutMs: timeoutMs });
  } catch (err) {
    return [fail('drachtio-server', (err as Error).message, 'check DRACHTIO_TLS_CA_FILE')];
  }
  try {
    await backend.start();
    return [ok('drachtio-server', `${host}:${port} connected, the secret accepted, and it has the ${config.sip.ccaiTransport} transport CCAI_SIP_TRANSPORT needs`)];
  } catch (err) {
    return [fail('drachtio-server', (err as Error).message)];
  } finally {
    await backend.stop();
  }
}
