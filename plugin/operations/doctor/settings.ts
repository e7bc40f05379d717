import type { LoadResult } from '../../../config/load.js';
import { fail, ok, type Check } from './check.js';

/** config/load.ts's errors start with the setting they are about */
const SETTING_PREFIX = /^([A-Z][A-Z0-9_]*): (.*)$/s;

/**
 * Every setting, checked as `npm start` checks it: one ✗ per error (each names its setting and the fix), so the
 * operator sees them all at once; nothing else is checked until they are fixed.
 */
export function settingsChecks(loaded: LoadResult, file: string): Check[] {
  if (loaded.ok) return [ok('settings', `${file} and the environment: every setting is valid`)];
  return loaded.errors.map((error) => {
    const [, name, rest] = SETTING_PREFIX.exec(error) ?? [];
    return name !== undefined && rest !== undefined ? fail(name, rest) : fail('settings', error);
  });
}
