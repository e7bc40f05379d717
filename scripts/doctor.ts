/**
 * `npm run doctor [-- --json] [-- --timeout-ms 5000]`: checks a gateway before its first call, from the configuration
 * `npm start` reads (APP_CONFIG or jambonz-app.json, the environment): one line per check, ✓ / ⚠ / ✗, each warning
 * and failure with its fix. Exit 0 when nothing is ✗, 1 otherwise; 2 for a usage error.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { appConfigFile, loadConfig } from '../config/load.js';
import { exitCode } from '../plugin/operations/doctor/check.js';
import { runDoctor } from '../plugin/operations/doctor/doctor.js';
import { renderJson, renderText } from '../plugin/operations/doctor/report.js';

const USAGE = 'usage: npm run doctor -- [--json] [--timeout-ms <ms, default 5000>]';
const DEFAULT_TIMEOUT_MS = 5_000;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { json: { type: 'boolean', default: false }, 'timeout-ms': { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const timeoutText = values['timeout-ms'];
  const timeoutMs = timeoutText === undefined ? DEFAULT_TIMEOUT_MS : Number(timeoutText);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
    process.stderr.write(`--timeout-ms must be an integer number of milliseconds from 1 to 60000\n${USAGE}\n`);
    return 2;
  }
  const file = appConfigFile(process.env);
  const loaded = loadConfig({ file, env: process.env });
  const checks = await runDoctor(loaded, { file, log: pino({ level: 'silent' }), timeoutMs });
  process.stdout.write(values.json ? renderJson(checks) : renderText(checks));
  return exitCode(checks);
}

process.exitCode = await main();
