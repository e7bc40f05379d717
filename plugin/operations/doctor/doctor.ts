import type { Logger } from 'pino';
import type { LoadResult } from '../../../config/load.js';
import { addressChecks } from './addresses.js';
import { ccaiConnectionChecks } from './ccai-connection.js';
import type { Check } from './check.js';
import { drachtioChecks } from './drachtio.js';
import { rtpPortChecks } from './rtp-ports.js';
import { securityChecks } from './security.js';
import { settingsChecks } from './settings.js';
import { sipOptionsCheck } from './sip-options.js';
import { wssCertificateChecks } from './wss-certificate.js';

export interface DoctorOptions {
  /** the settings file read, named in the settings line */
  file: string;
  /** the backends' logger: silent for the command, whose output is the checks */
  log: Logger;
  /** each network wait (connect, handshake, OPTIONS answer, drachtio-server) gives up after this long */
  timeoutMs: number;
}

/** `npm run doctor`: every check in the order an operator fixes things; invalid settings stop it after their lines. */
export async function runDoctor(loaded: LoadResult, opts: DoctorOptions): Promise<Check[]> {
  const checks = settingsChecks(loaded, opts.file);
  if (!loaded.ok) return checks;
  const { config } = loaded;
  const { log, timeoutMs } = opts;

  const ccai = await ccaiConnectionChecks(config, log, timeoutMs);
  checks.push(...ccai.checks);
  if (ccai.usable && ccai.target !== undefined) checks.push(await sipOptionsCheck(config, ccai.target, log, timeoutMs));
  if (config.sip.backend === 'drachtio') checks.push(...(await drachtioChecks(config, log, timeoutMs)));
  if (ccai.target !== undefined) checks.push(...addressChecks(config, ccai.target.host));
  checks.push(...(await rtpPortChecks(config)));
  checks.push(...wssCertificateChecks(config.listen));
  checks.push(...securityChecks(config, loaded.warnings));
  return checks;
}
