import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/load.js';

// Every setting the shipped jambonz-app.json declares, given a value of the wrong kind, must stop the start-up with
// exactly one error line, and that line must start with the setting's name. The cases are generated from the file's
// own entries (type, enum), so a setting added to the file is covered without touching this test.

const SHIPPED = join(import.meta.dirname, '../../../jambonz-app.json');
type Entry = { type: 'string' | 'number' | 'boolean'; enum?: string[]; obscure?: boolean; default?: unknown; value?: unknown };
const shipped = (): Record<string, Entry> => JSON.parse(readFileSync(SHIPPED, 'utf8'));
/** the settings; `/…` keys are node-client-ws service paths, not settings */
const SETTINGS = Object.entries(shipped()).filter(([name]) => !name.startsWith('/'));

const dir = mkdtempSync(join(tmpdir(), 'every-setting-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function withEntry(name: string, change: (entry: Entry) => void): string {
  const app = shipped();
  change(app[name]!);
  const file = join(dir, `app-${n++}.json`);
  writeFileSync(file, JSON.stringify(app));
  return file;
}

function errorsFor(env: NodeJS.ProcessEnv, file = SHIPPED): string[] {
  const result = loadConfig({ file, env });
  return result.ok ? [] : result.errors;
}

/** Environment variables are strings: a wrong type there is a word for a number, "maybe", or a value off the enum. */
function wrongEnvValues(entry: Entry): Array<[kind: string, value: string]> {
  if (entry.enum) return [['out of the enum', 'not-one-of-them']];
  if (entry.type === 'number') return [['a string for a number', 'twelve'], ['a fraction', '12.5']];
  if (entry.type === 'boolean') return [['neither true nor false', 'maybe'], ['a number for a boolean', '1']];
  return []; // a free-form string: every environment value is a string (the file case below covers its type)
}

/** In the file a value has a JSON type of its own: a number for a string, a boolean for a number, a number for a boolean. */
function wrongFileValue(entry: Entry): unknown {
  return { string: 1234, number: true, boolean: 1 }[entry.type];
}

const envCases = SETTINGS.flatMap(([name, entry]) => wrongEnvValues(entry).map(([kind, value]) => [name, kind, value, entry] as const));

describe('every setting in jambonz-app.json, given a value of the wrong kind', () => {
  it('the generated cases cover every setting that is not a free-form string', () => {
    const covered = new Set(envCases.map(([name]) => name));
    const free = SETTINGS.filter(([, e]) => e.type === 'string' && !e.enum).map(([name]) => name);
    expect(SETTINGS.length).toBeGreaterThan(40);
    expect([...covered, ...free].sort()).toEqual(SETTINGS.map(([name]) => name).sort());
  });

  it.each(envCases)('%s from the environment, %s (%j): one error, naming it', (name, _kind, value, entry) => {
    const errors = errorsFor({ [name]: value });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.startsWith(`${name}: `), errors[0]).toBe(true);
    if (entry.obscure) expect(errors[0]).not.toContain(value);
  });

  it.each(SETTINGS)('%s in the file as a JSON value of another type: one error, naming it', (name, entry) => {
    const wrong = wrongFileValue(entry);
    const errors = errorsFor({}, withEntry(name, (e) => void (e.value = wrong)));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.startsWith(`${name}: `), errors[0]).toBe(true);
  });

  it.each(SETTINGS)('%s missing (no value, no default, no environment variable): as if empty, or one error naming it', (name) => {
    const errors = errorsFor({}, withEntry(name, (e) => {
      delete e.value;
      delete e.default;
    }));
    // settings where empty means something (no TLS, no allow-list, no service path ...) take missing as empty
    const emptyAllowed = loadConfig({ file: SHIPPED, env: { [name]: '' } }).ok;
    if (emptyAllowed) {
      expect(errors).toEqual([]);
    } else {
      expect(errors).toHaveLength(1);
      expect(errors[0], errors[0]).toMatch(new RegExp(`^${name}: not set`));
    }
  });
});
