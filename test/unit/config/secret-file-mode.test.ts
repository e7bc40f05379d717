import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/load.js';

// Issue 13, also seen: a world-readable BOTS_FILE started without a word. Secrets and private keys that others on
// the host can read are warned about at start, as ssh does for a private key whose mode lets group or others in.

const SHIPPED = join(import.meta.dirname, '../../../jambonz-app.json');
const dir = mkdtempSync(join(tmpdir(), 'secret-mode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BOTS = JSON.stringify([{ botId: 'st-1', clientId: 'cs-1', clientSecret: 'a-real-secret' }]);
let n = 0;
function fileWithMode(content: string, mode: number): string {
  const file = join(dir, `f${n++}`);
  writeFileSync(file, content);
  chmodSync(file, mode); // explicit: the umask must not decide what the test checks
  return file;
}
function warningsFor(env: NodeJS.ProcessEnv): string[] {
  const result = loadConfig({ file: SHIPPED, env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.warnings;
}

describe('secret files others can read are warned about at start', () => {
  it.each(['0644', '0640', '0604', '0444', '0660'])('BOTS_FILE with mode %s: one warning naming it, its mode and the fix', (mode) => {
    const bots = fileWithMode(BOTS, parseInt(mode, 8));
    expect(warningsFor({ BOTS_FILE: bots })).toEqual([
      `BOTS_FILE=${bots} is open to other users of this host (mode ${mode}): whoever can read it has the secret; chmod 600 it`,
    ]);
  });

  it('DRACHTIO_SECRET_FILE and the TLS private keys are checked too; the secret itself is never in the warning', () => {
    const secret = fileWithMode('drachtio-shared-secret', 0o644);
    const key = fileWithMode('key', 0o644);
    const sipKey = fileWithMode('sip-key', 0o640);
    const cert = fileWithMode('cert', 0o644);
    const warnings = warningsFor({
      DRACHTIO_SECRET_FILE: secret,
      TLS_CERT_FILE: cert,
      TLS_KEY_FILE: key,
      SIP_TLS_CERT_FILE: cert,
      SIP_TLS_KEY_FILE: sipKey,
    });
    expect(warnings.map((w) => w.slice(0, w.indexOf(' '))).sort()).toEqual(
      [`DRACHTIO_SECRET_FILE=${secret}`, `SIP_TLS_KEY_FILE=${sipKey}`, `TLS_KEY_FILE=${key}`].sort(),
    );
    expect(warnings).toHaveLength(3);
    expect(warnings.join('\n')).not.toContain('drachtio-shared-secret');
  });

  it('no warning for 0600 or 0400 secrets, for a certificate anyone may read, or for a setting that is no secret', () => {
    expect(
      warningsFor({
        BOTS_FILE: fileWithMode(BOTS, 0o600),
        DRACHTIO_SECRET_FILE: fileWithMode('s', 0o400),
        TLS_CERT_FILE: fileWithMode('cert', 0o644),
        TLS_KEY_FILE: fileWithMode('key', 0o600),
        SIP_FROM_USER_FILE: fileWithMode('talkdesk-gw', 0o644),
      }),
    ).toEqual([]);
  });
});
