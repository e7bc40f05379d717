import { readFileSync } from 'node:fs';
import { requireQuietly } from './quiet-require.js';

/** One entry of a node-client-ws app.json, plus the operator's `value` (the validator allows extra fields). */
export interface AppJsonEntry {
  type: 'string' | 'number' | 'boolean';
  description: string;
  default?: string | number | boolean;
  enum?: unknown[];
  obscure?: boolean;
  uiHint?: 'input' | 'textarea' | 'filepicker';
  required?: boolean;
  value?: unknown;
}

export type AppJson = Record<string, unknown>;

// The validator module alone, not the package index: the index pulls in the whole WebSocket endpoint. It is
// CommonJS without typings (types/jambonz-node-client-ws.d.ts).
const { validateAppConfig } = requireQuietly<typeof import('@jambonz/node-client-ws/lib/utils/validator.js')>('@jambonz/node-client-ws/lib/utils/validator.js');

/**
 * Read and check the app.json with the same validator the jambonz tooling uses, so a file that loads here also
 * renders in the portal. Never throws.
 */
export function readAppJson(file: string): { ok: true; appJson: AppJson } | { ok: false; errors: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return {
      ok: false,
      errors: [`${file}: cannot read the settings file (${code}); pass the path of jambonz-app.json (repository root)`],
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      errors: [`${file}: not valid JSON (${(err as Error).message}); fix the syntax (a trailing comma, an unquoted key)`],
    };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, errors: [`${file}: must hold a JSON object with one key per setting`] };
  }
  const { isValid, errors } = validateAppConfig(parsed);
  if (!isValid) return { ok: false, errors: errors.map((e) => `${file}: ${e}`) };
  return { ok: true, appJson: parsed as AppJson };
}

/**
 * A copy of the app.json safe to hand to the jambonz portal (HTTP OPTIONS): `value` and `default` of every
 * `obscure` entry are replaced by a fixed mask, so neither a secret nor its length leaves the process. Service
 * path keys (`"/ccai": {…}`) hold entries of their own and are masked the same way.
 */
export function maskObscure(appJson: AppJson): AppJson {
  const masked: AppJson = {};
  for (const [key, entry] of Object.entries(appJson)) {
    if (key.startsWith('/') && typeof entry === 'object' && entry !== null) {
      masked[key] = maskObscure(entry as AppJson);
      continue;
    }
    if (!isEntry(entry) || !entry.obscure) {
      masked[key] = entry;
      continue;
    }
    const copy: AppJsonEntry = { ...entry };
    if (copy.value !== undefined) copy.value = MASK;
    if (copy.default !== undefined) copy.default = MASK;
    masked[key] = copy;
  }
  return masked;
}

const MASK = '********';

export function isEntry(x: unknown): x is AppJsonEntry {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && typeof (x as AppJsonEntry).type === 'string';
}
