import { X509Certificate } from 'node:crypto';
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';

/** What a reload did: the certificate now served, or why the one served before stays. */
export type CertificateReload =
  | { ok: true; changed: boolean; fingerprint256: string; subject: string; validTo: string }
  | { ok: false; reason: string };

/** The part of https.Server (tls.Server) a reload needs. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export interface CertificatePair {
  cert: Buffer;
  key: Buffer;
}

/** The pair for the server's first context; throws as readFileSync does (load.ts checked both are readable). */
export function readCertificatePair(files: CertificateFiles): CertificatePair {
  return { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
}

export interface CertificateFiles {
  /** PEM: the certificate, then its chain, in one file */
  certFile: string;
  keyFile: string;
}

/**
 * certbot writes the new certificate and key one after the other and cert-manager swaps a `..data` symlink: wait
 * for the burst of directory events to settle before reading, so the pair read belongs together.
 */
export const CERT_RELOAD_DEBOUNCE_MS = 500;

/**
 * Keeps a TLS server on the current certificate without a restart: `reload()` (SIGHUP, tests) or a change in a
 * watched directory re-reads TLS_CERT_FILE/TLS_KEY_FILE and swaps the server's secure context. Only new handshakes
 * see the new pair; live sockets (calls in progress) keep theirs. A pair that does not load, does not match, or has
 * expired is refused with a logged reason, and the certificate served before stays.
 *
 * The directories are watched, not the files: certbot and cert-manager replace files by rename (a watch on the old
 * inode would go deaf after the first renewal). The directory of each file's real path is watched too (certbot's
 * `live/` symlinks point into `archive/`), and the set of watched directories is re-armed after every reload,
 * because Kubernetes secret volumes point the symlinks at a fresh timestamped directory each update. Only events
 * naming one of those files (or a Kubernetes `..` entry) count, so a busy shared directory causes no reloads.
 */
export class CertificateReloader {
  private readonly watchers = new Map<string, FSWatcher>();
  /** the names in the watched directories whose change means the pair may have changed */
  private readonly names = new Set<string>();
  private debounce: NodeJS.Timeout | undefined;
  /** reloads run one at a time, in order: a SIGHUP during a watch-triggered reload waits for it */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly target: SecureContextTarget,
    private readonly files: CertificateFiles,
    /** the pair the server was created with (readCertificatePair) */
    private loaded: CertificatePair,
    private readonly log: Logger,
    private readonly debounceMs = CERT_RELOAD_DEBOUNCE_MS,
    /** every reload's result, whatever triggered it (the metrics count them) */
    private readonly onReload?: (result: CertificateReload, trigger: string) => void,
  ) {}

  /** Start watching the files' directories; changes reload after `debounceMs` of quiet. */
  watch(): void {
    this.rearm();
  }

  /** Re-read the pair now (SIGHUP, tests). Resolves when the new context is in place, or with why it is not. */
  reload(trigger = 'request'): Promise<CertificateReload> {
    const next = this.queue.then(() => this.load(trigger));
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.debounce);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private async load(trigger: string): Promise<CertificateReload> {
    const result = await this.swap();
    if (!this.closed) this.rearm();
    const { certFile, keyFile } = this.files;
    if (!result.ok) {
      this.log.error({ trigger, certFile, keyFile, reason: result.reason }, 'TLS certificate not reloaded: keeping the current one');
    } else if (result.changed) {
      this.log.info({ trigger, certFile, ...result }, 'TLS certificate reloaded: new connections get it');
    } else {
      this.log.debug({ trigger, certFile }, 'TLS certificate files unchanged');
    }
    this.onReload?.(result, trigger);
    return result;
  }

  private async swap(): Promise<CertificateReload> {
    const { certFile, keyFile } = this.files;
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    } catch (err) {
      return { ok: false, reason: `cannot read ${(err as NodeJS.ErrnoException).path ?? certFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch (err) {
      return { ok: false, reason: `TLS_CERT_FILE holds no PEM certificate (${(err as Error).message})` };
    }
    const described = { fingerprint256: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo };
    if (cert.equals(this.loaded.cert) && key.equals(this.loaded.key)) return { ok: true, changed: false, ...described };
    if (Date.parse(x509.validTo) < Date.now()) {
      return { ok: false, reason: `the certificate in TLS_CERT_FILE expired on ${x509.validTo}` };
    }
    try {
      // the same check the server would make, done first: a key that does not match the certificate throws here
      createSecureContext({ cert, key });
      this.target.setSecureContext({ cert, key });
    } catch (err) {
      return { ok: false, reason: `TLS_CERT_FILE and TLS_KEY_FILE do not load as a pair (${(err as Error).message})` };
    }
    this.loaded = { cert, key };
    return { ok: true, changed: true, ...described };
  }

  private onDirectoryEvent(filename: string | null): void {
    // other files in a shared directory (/etc/ssl/private) are not ours; Kubernetes swaps `..data`
    if (this.closed || (filename !== null && !this.names.has(filename) && !filename.startsWith('..'))) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload('file change'), this.debounceMs);
    this.debounce.unref();
  }

  /** Watch exactly the directories the files (and their symlink targets) live in now. */
  private rearm(): void {
    const wanted = new Set<string>();
    this.names.clear();
    for (const file of [this.files.certFile, this.files.keyFile]) {
      wanted.add(dirname(file));
      this.names.add(basename(file));
      try {
        const real = realpathSync(file);
        wanted.add(dirname(real));
        this.names.add(basename(real));
      } catch {
        // mid-rename: the next event re-arms
      }
    }
    for (const [dir, watcher] of this.watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => this.onDirectoryEvent(filename));
        watcher.on('error', (err) => {
          this.log.warn({ dir, err: err.message }, 'TLS certificate directory watch failed: reload with SIGHUP');
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.log.warn({ dir, err: (err as Error).message }, 'cannot watch the TLS certificate directory: reload with SIGHUP');
      }
    }
  }
}
