import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildPlugin, killPlugins, spawnPlugin } from '../support/plugin-process.js';

// The built plugin as `npm start` runs it: a BOTS_FILE others can read is said at start, before it listens, and the
// gateway still starts (config/load.ts; the rule itself in test/unit/config/secret-file-mode.test.ts).
let main: string;
const dir = mkdtempSync(join(tmpdir(), 'secret-mode-e2e-'));
beforeAll(() => {
  main = buildPlugin('node_modules/.cache/gw-secret-mode-test');
});
afterEach(killPlugins);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the built plugin with a world-readable BOTS_FILE', () => {
  it('warns at start, naming the file and its mode, and starts', async () => {
    const bots = join(dir, 'bots.json');
    writeFileSync(bots, JSON.stringify([{ botId: 'st-1', clientId: 'cs-1', clientSecret: 'never-in-the-log' }]));
    chmodSync(bots, 0o644);
    const plugin = spawnPlugin(main, { BOTS_FILE: bots, RTP_PORT_MIN: '26100', RTP_PORT_MAX: '26198' });
    await plugin.port;

    const warning = plugin.logs.findIndex((l) => String(l['msg']).startsWith(`BOTS_FILE=${bots} is open to other users`));
    const listening = plugin.logs.findIndex((l) => l['msg'] === 'talkdesk gateway listening');
    expect(warning, JSON.stringify(plugin.logs.map((l) => l['msg']))).toBeGreaterThanOrEqual(0);
    expect(warning).toBeLessThan(listening);
    expect(plugin.logs[warning]).toMatchObject({ level: 40, msg: expect.stringContaining('(mode 0644)') });
    expect(JSON.stringify(plugin.logs)).not.toContain('never-in-the-log');
  });
});
