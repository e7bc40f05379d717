import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.js';
import { authenticateUpgrade } from '../../plugin/talkdesk/auth.js';
import { FakeTalkdesk } from '../support/fake-talkdesk.js';
import { linesWith } from '../support/gateway.js';
import { buildPlugin } from '../support/plugin-process.js';
import { gatewayPerTest } from './gateway-per-test.js';

// `npm run studio-url` as an operator runs it: the built command, the shipped jambonz-app.json, settings from the
// environment. What it prints must be what a gateway with the same settings accepts.
const startGateway = gatewayPerTest();
const BOTS = JSON.stringify([{ botId: 'st-studio', clientId: 'cs-studio', clientSecret: ['studio-new-secret', 'studio-old-secret'] }]);

const OUT_DIR = 'node_modules/.cache/gw-studio-url-test';
beforeAll(() => {
  buildPlugin(OUT_DIR);
});

function studioUrlCommand(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [`${OUT_DIR}/scripts/studio-url.js`, ...args], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
}

describe('npm run studio-url', () => {
  it('prints one URL whose token the plugin verifies, and which a gateway with the same settings lets in', async () => {
    const env = { BOTS, PUBLIC_HOST: 'gw.example.com' };
    const run = studioUrlCommand(['--bot', 'st-studio', '--sipuri', '+17345551234', '--account-id', '5f0c0a0b0c0d0e0f10111213'], env);
    expect(run.stderr).toBe('note: st-studio lists 2 secrets: the token is signed with the first, the current one (secretIndex 0)\n');
    expect(run.status).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const url = new URL(lines[0]!);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe('wss://gw.example.com/audiosocket/talkdesk/');

    const loaded = loadConfig({ file: 'jambonz-app.json', env });
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    expect(authenticateUpgrade(url.searchParams, loaded.config.bots)).toMatchObject({
      ok: true,
      secretIndex: 0,
      params: { sipuri: '+17345551234', botId: 'st-studio', accountId: '5f0c0a0b0c0d0e0f10111213', agentassist: false },
    });

    // the gateway behind PUBLIC_HOST, here on loopback
    const gw = await startGateway({ BOTS, RTP_PORT_MIN: '34400', RTP_PORT_MAX: '34498' });
    const td = await FakeTalkdesk.connect(`ws://127.0.0.1:${gw.app.port}${url.pathname}${url.search}`);
    await td.close();
    expect(linesWith(gw.logs, 'talkdesk stream accepted')).toMatchObject([{ sipuri: '+17345551234', secretIndex: 0 }]);
  });

  it.each([
    ['PUBLIC_HOST unset', ['--bot', 'st-studio', '--sipuri', '+1555'], { BOTS }, /^studio-url: PUBLIC_HOST is not set: /],
    ['an unknown bot', ['--bot', 'st-nope', '--sipuri', '+1555'], { BOTS, PUBLIC_HOST: 'gw.example.com' }, /^studio-url: no bot "st-nope" in BOTS \(it lists st-studio\)/],
    ['no --sipuri', ['--bot', 'st-studio'], { BOTS, PUBLIC_HOST: 'gw.example.com' }, /^--bot and --sipuri are required\nusage: npm run studio-url -- --bot/],
    ['an invalid setting', ['--bot', 'st-studio', '--sipuri', '+1555'], { BOTS, PUBLIC_HOST: 'https://gw' }, /^jambonz-app\.json: the configuration is not valid:\n {2}- PUBLIC_HOST: must be/],
  ])('%s: exit 1, nothing on stdout, the reason on stderr', (_, args, env, reason) => {
    const run = studioUrlCommand(args, env);
    expect(run.stderr).toMatch(reason);
    expect(run.stdout).toBe('');
    expect(run.status).toBe(1);
  });
});
