import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** The external programs the harness drives, with the Debian package that provides each. */
const DEBIAN_PACKAGE = {
  sipp: 'sip-tester',
  'espeak-ng': 'espeak-ng',
  sox: 'sox',
  socat: 'socat',
  openssl: 'openssl',
  haproxy: 'haproxy',
  kamailio: 'kamailio',
  baresip: 'baresip-core',
} as const;

export type Tool = keyof typeof DEBIAN_PACKAGE;

/**
 * Absolute path of `name` on PATH. Throws with the install command when it is missing, so a test that needs the
 * tool fails loudly instead of being skipped: a skipped SIP test on CI looks exactly like a passing one.
 */
export function requireTool(name: Tool): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    // a relative PATH entry would make the answer depend on the cwd
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  throw new Error(`${name} not found: install it with: apt-get install -y ${DEBIAN_PACKAGE[name]}`);
}
