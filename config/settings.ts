import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isEntry, type AppJson } from './app-json.js';

export type SettingType = 'string' | 'number' | 'boolean';

/** Where a setting's raw value came from, quoted in error messages so the operator knows which one to fix. */
interface RawValue {
  value: unknown;
  from: string;
}

/**
 * Resolves each setting (env var, then `<NAME>_FILE`, then the file's `value`, then its `default`) and coerces it
 * strictly. Every problem is recorded in `errors`, each naming the setting and what is allowed, and the getters go
 * on with a placeholder (`''`, `NaN`) so that one run reports them all. Values are meaningful only while `errors`
 * is empty; the loader checks that before building the config.
 */
export class SettingsReader<Name extends string> {
  readonly errors: string[] = [];
  /** what the operator should hear at start but that does not stop it: secret files others can read */
  readonly warnings: string[] = [];
  private readonly modeChecked = new Set<string>();

  constructor(
    private readonly appJson: AppJson,
    private readonly file: string,
    private readonly env: NodeJS.ProcessEnv,
    /** never echoed in messages: their values are credentials */
    private readonly secrets: ReadonlySet<Name>,
  ) {}

  /**
   * The file must describe exactly the known settings with the type the code reads: an unknown key is usually a
   * typo that would silently leave the real setting at its default. Service path keys (`/…`) belong to
   * node-client-ws and are skipped.
   */
  checkDeclarations(known: Readonly<Record<Name, SettingType>>): void {
    for (const [name, entry] of Object.entries(this.appJson)) {
      if (name.startsWith('/')) continue;
      const expected = (known as Readonly<Record<string, SettingType>>)[name];
      if (expected === undefined) {
        const names = Object.keys(known).join(', ');
        this.errors.push(`${name}: unknown setting in ${this.file}; known settings are ${names}`);
      } else if (isEntry(entry) && entry.type !== expected) {
        this.errors.push(
          `${name}: ${this.file} declares type "${entry.type}", but this setting is a ${expected}; restore "type": "${expected}"`,
        );
      }
    }
  }

  fail(name: Name, rule: string, raw?: RawValue): void {
    this.errors.push(raw === undefined ? `${name}: ${rule}` : `${name}: ${rule} (${this.describe(name, raw)})`);
  }

  /** A string setting. Empty is allowed only where the caller says what empty means. */
  string(name: Name, opts: { allowEmpty?: boolean } = {}): string {
    return this.text(name, opts).value;
  }

  /**
   * An integer in [min, max]. A JSON number or a string of digits only: `"12a"`, `"1e3"`, `" 12"` and `12.5` are
   * errors, never silently truncated or replaced by the default.
   */
  integer(
    name: Name,
    min: number,
    max: number,
    rule = `must be an integer between ${min} and ${max}`,
    test: (n: number) => boolean = () => true,
  ): number {
    const raw = this.raw(name);
    if (raw === null) return NaN;
    if (raw === undefined) {
      this.fail(name, `not set; ${rule}`);
      return NaN;
    }
    const n = toInteger(raw.value);
    if (n === undefined || n < min || n > max || !test(n)) {
      this.fail(name, rule, raw);
      return NaN;
    }
    return n;
  }

  /** An integer in [min, max], or undefined when unset or empty: for a setting whose absence means something. */
  optionalInteger(name: Name, min: number, max: number, rule = `must be an integer between ${min} and ${max}, or empty`): number | undefined {
    const raw = this.raw(name);
    if (raw === undefined || raw === null || raw.value === '') return undefined;
    return this.integer(name, min, max, rule);
  }

  /** A JSON boolean, or the strings `true`/`false` (environment variables are strings). Nothing else: no `1`, `yes`. */
  boolean(name: Name): boolean {
    const raw = this.raw(name);
    if (raw === null) return false;
    const rule = 'must be true or false';
    if (raw === undefined) {
      this.fail(name, `not set; ${rule}`);
      return false;
    }
    if (raw.value === true || raw.value === 'true') return true;
    if (raw.value === false || raw.value === 'false') return false;
    this.fail(name, rule, raw);
    return false;
  }

  oneOf<T extends string>(name: Name, allowed: readonly T[]): T {
    const rule = `must be one of ${allowed.join(', ')}`;
    return this.checked(name, (v) => (allowed as readonly string[]).includes(v), rule) as T;
  }

  /** A literal IPv4 address (bind/advertised addresses go into SDP `c=` and Via, where names do not belong). */
  ipv4(name: Name, opts: { allowEmpty?: boolean } = {}): string {
    const rule = `must be an IPv4 address such as 127.0.0.1${opts.allowEmpty ? ', or empty' : ''}`;
    return this.checked(name, (v) => isIP(v) === 4, rule, opts);
  }

  /** An IPv4 or IPv6 literal, for the WebSocket listener. */
  ip(name: Name): string {
    const rule = 'must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1 (not a host name)';
    return this.checked(name, (v) => isIP(v) !== 0, rule);
  }

  /** An IPv4 address or a DNS host name (RFC 1123 labels). */
  host(name: Name, opts: { allowEmpty?: boolean } = {}): string {
    const rule = `must be an IPv4 address or a DNS host name such as ccai.example.com${opts.allowEmpty ? ', or empty' : ''}`;
    return this.checked(name, (v) => isIP(v) === 4 || HOST_NAME.test(v), rule, opts);
  }

  /** A URL's host and optional port, `host[:port]`: an IPv4 address or a DNS host name, a port from 1 to 65535. */
  authority(name: Name, opts: { allowEmpty?: boolean } = {}): string {
    const rule = `must be a host name or IPv4 address with an optional :port, such as gw.example.com or gw.example.com:8443${opts.allowEmpty ? ', or empty' : ''}`;
    return this.checked(name, isAuthority, rule, opts);
  }

  /** A non-empty string that must also pass `test`. */
  checked(name: Name, test: (value: string) => boolean, rule: string, opts: { allowEmpty?: boolean } = {}): string {
    const { value, raw } = this.text(name, opts);
    if (value !== '' && !test(value)) this.fail(name, rule, raw);
    return value;
  }

  /** A comma-separated list; blanks around items and empty items are dropped, so empty means "no items". */
  list(name: Name): string[] {
    return this.string(name, { allowEmpty: true })
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }

  /**
   * A file path that must be readable now, so a missing certificate fails at start rather than at the first call.
   * `secret`: a private key, which others on the host should not be able to read (warned, see warnIfOthersCanRead).
   */
  readableFile(name: Name, opts: { secret?: boolean } = {}): string {
    const path = this.string(name, { allowEmpty: true });
    if (path === '') return '';
    try {
      readFileSync(path);
      if (opts.secret) this.warnIfOthersCanRead(name, path);
    } catch (err) {
      this.fail(name, `cannot read ${path} (${errorCode(err)}); give a readable file path, or leave it empty`);
    }
    return path;
  }

  /**
   * ssh refuses a private key whose mode lets group or others in (`mode & 077`); we warn instead, once per file
   * setting, because container secrets are often mounted 0444 or 0644 by default, where refusing would stop the
   * gateway on hosts no one else logs in to. The warning names the setting and the file, never the content.
   */
  private warnIfOthersCanRead(setting: string, path: string): void {
    if (this.modeChecked.has(setting)) return;
    this.modeChecked.add(setting);
    let mode: number;
    try {
      mode = statSync(path).mode & 0o777;
    } catch {
      return; // it was just read; a file gone since then fails where it is used
    }
    if ((mode & 0o077) === 0) return;
    this.warnings.push(
      `${setting}=${path} is open to other users of this host (mode 0${mode.toString(8)}): whoever can read it has the secret; chmod 600 it`,
    );
  }

  private text(name: Name, opts: { allowEmpty?: boolean }): { value: string; raw?: RawValue } {
    const raw = this.raw(name);
    if (raw === null) return { value: '' };
    if (raw === undefined) {
      if (!opts.allowEmpty) {
        this.fail(name, `not set; give it a "value" in ${this.file} or set the environment variable ${name}`);
      }
      return { value: '' };
    }
    if (typeof raw.value !== 'string') {
      this.fail(name, 'must be a string', raw);
      return { value: '' };
    }
    if (raw.value === '' && !opts.allowEmpty) {
      this.fail(name, 'must not be empty', raw);
      return { value: '' };
    }
    return { value: raw.value, raw };
  }

  /** undefined: not set anywhere; null: `<NAME>_FILE` could not be read, already reported */
  private raw(name: Name): RawValue | undefined | null {
    const direct = this.env[name];
    if (direct !== undefined) return { value: direct, from: `environment variable ${name}` };
    const path = this.env[`${name}_FILE`];
    if (path !== undefined) {
      try {
        // trimmed: secrets files usually end with a newline that is not part of the value
        const value = readFileSync(path, 'utf8').trim();
        if (this.secrets.has(name)) this.warnIfOthersCanRead(`${name}_FILE`, path);
        return { value, from: `${name}_FILE=${path}` };
      } catch (err) {
        const fix = `point ${name}_FILE at a readable file or unset it`;
        this.fail(name, `cannot read ${name}_FILE=${path} (${errorCode(err)}); ${fix}`);
        return null;
      }
    }
    const entry = this.appJson[name];
    if (!isEntry(entry)) return undefined;
    if (entry.value !== undefined) return { value: entry.value, from: `"value" in ${this.file}` };
    if (entry.default !== undefined) return { value: entry.default, from: `"default" in ${this.file}` };
    return undefined;
  }

  private describe(name: Name, raw: RawValue): string {
    if (this.secrets.has(name)) return `from ${raw.from}`;
    const text = typeof raw.value === 'string' ? raw.value : JSON.stringify(raw.value) ?? String(raw.value);
    const shown = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    return `got ${JSON.stringify(shown)} from ${raw.from}`;
  }
}

function isAuthority(value: string): boolean {
  const [, host = '', port] = /^([^:]*)(?::(\d{1,5}))?$/.exec(value) ?? [];
  return (isIP(host) === 4 || HOST_NAME.test(host)) && (port === undefined || (Number(port) >= 1 && Number(port) <= 65535));
}

function toInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^-?\d{1,15}$/.test(value)) return Number(value);
  return undefined;
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
