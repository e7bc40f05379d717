import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../../../../config/load.js';
import type { PluginConfig } from '../../../../../config/schema.js';

export const APP_JSON = join(import.meta.dirname, '../../../../../jambonz-app.json');
export const silentLog = pino({ level: 'silent' });

/** The shipped jambonz-app.json under `env`, as npm start and npm run doctor load it; throws on a setting error. */
export function configWith(env: Record<string, string> = {}): { config: PluginConfig; warnings: string[] } {
  const loaded = loadConfig({ file: APP_JSON, env });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return { config: loaded.config, warnings: loaded.warnings };
}

export const OWN_BOTS = JSON.stringify([{ botId: 'st-one', clientId: 'cs-one', clientSecret: 'one-secret' }]);
