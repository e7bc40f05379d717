import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../config/load.js';
import { authenticateUpgrade } from '../../../../plugin/talkdesk/auth.js';
import { studioUrl } from '../../../../plugin/talkdesk/studio-url.js';

const BOTS = JSON.stringify([
  { botId: 'st-rotating', clientId: 'cs-rotating', clientSecret: ['current-secret', 'old-secret'] },
  { botId: 'st-other', clientId: 'cs-other', clientSecret: 'other-secret' },
]);

/** the configuration `npm start` would read, from the shipped jambonz-app.json and these variables */
function config(env: Record<string, string> = {}) {
  const loaded = loadConfig({ file: 'jambonz-app.json', env: { BOTS, PUBLIC_HOST: 'gw.example.com', ...env } });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config;
}

function urlOf(result: ReturnType<typeof studioUrl>): URL {
  if (!result.ok) throw new Error(result.error);
  return new URL(result.url);
}

describe('studioUrl', () => {
  it("is Kore's Voice Stream URL on PUBLIC_HOST, the number URL-encoded, its query in Kore's order", () => {
    const result = studioUrl(config(), { botId: 'st-rotating', sipuri: '+17345551234', accountId: '5f0c0a0b0c0d0e0f10111213' });
    if (!result.ok) throw new Error(result.error);
    expect(result.url).toMatch(
      /^wss:\/\/gw\.example\.com\/audiosocket\/talkdesk\/\?sipuri=%2B17345551234&token=[\w-]+\.[\w-]+\.[\w-]+&botId=st-rotating&accountId=5f0c0a0b0c0d0e0f10111213&agentassist=false$/,
    );
  });

  it('signs with the current secret a token the gateway accepts: only {appId}, no expiry', () => {
    const cfg = config();
    const url = urlOf(studioUrl(cfg, { botId: 'st-rotating', sipuri: '+17345551234' }));
    expect(authenticateUpgrade(url.searchParams, cfg.bots)).toMatchObject({ ok: true, secretIndex: 0, params: { sipuri: '+17345551234', botId: 'st-rotating', agentassist: false } });
    const token = url.searchParams.get('token')!;
    expect(jwt.decode(token, { complete: true })).toMatchObject({ header: { alg: 'HS256', typ: 'JWT' }, payload: { appId: 'cs-rotating' } });
    expect(Object.keys(jwt.decode(token) as object)).toEqual(['appId']);
    expect(() => jwt.verify(token, 'current-secret', { algorithms: ['HS256'] })).not.toThrow();
    // once the old secret is removed from BOTS, the URL still works
    const afterRotation = config({ BOTS: JSON.stringify([{ botId: 'st-rotating', clientId: 'cs-rotating', clientSecret: 'current-secret' }]) });
    expect(authenticateUpgrade(url.searchParams, afterRotation.bots)).toMatchObject({ ok: true, secretIndex: 0 });
  });

  it('keeps the port of PUBLIC_HOST and marks an Agent Assist stream', () => {
    const url = urlOf(studioUrl(config({ PUBLIC_HOST: 'gw.example.com:8443' }), { botId: 'st-other', sipuri: '4930123', agentassist: true }));
    expect(url.host).toBe('gw.example.com:8443');
    expect(url.searchParams.get('agentassist')).toBe('true');
    expect(url.searchParams.has('accountId')).toBe(false);
  });

  it('says which secret signed for a bot being rotated, and warns of the example secret', () => {
    expect(studioUrl(config(), { botId: 'st-rotating', sipuri: '+1555' })).toMatchObject({
      ok: true,
      notes: ['st-rotating lists 2 secrets: the token is signed with the first, the current one (secretIndex 0)'],
    });
    expect(studioUrl(config(), { botId: 'st-other', sipuri: '+1555' })).toMatchObject({ ok: true, notes: [] });
    const example = loadConfig({ file: 'jambonz-app.json', env: { PUBLIC_HOST: 'gw.example.com' } });
    if (!example.ok) throw new Error(example.errors.join('\n'));
    const result = studioUrl(example.config, { botId: example.config.bots[0]!.botId, sipuri: '+1555' });
    expect(result).toMatchObject({ ok: true, notes: [expect.stringMatching(/holds the shipped EXAMPLE secret: anyone can sign this token/)] });
  });

  it('without PUBLIC_HOST, refuses and names the setting', () => {
    expect(studioUrl(config({ PUBLIC_HOST: '' }), { botId: 'st-rotating', sipuri: '+1555' })).toEqual({
      ok: false,
      error: expect.stringMatching(/^PUBLIC_HOST is not set: set it to the host name .* e\.g\. PUBLIC_HOST=gw\.example\.com$/),
    });
  });

  it('refuses a bot BOTS does not list, naming the ones it does', () => {
    expect(studioUrl(config(), { botId: 'st-nope', sipuri: '+1555' })).toEqual({
      ok: false,
      error: 'no bot "st-nope" in BOTS (it lists st-rotating, st-other); give one of those with --bot',
    });
  });

  it('refuses what the gateway would refuse, for the reason it would give', () => {
    expect(studioUrl(config(), { botId: 'st-rotating', sipuri: 'sip:+1555@evil' })).toEqual({
      ok: false,
      error: 'the gateway would refuse this URL: sipuri must be a phone number or SIP user part (URL-encode "+" as %2B)',
    });
    expect(studioUrl(config(), { botId: 'st-rotating', sipuri: '+1555', accountId: 'a'.repeat(200) })).toMatchObject({ ok: false, error: expect.stringMatching(/^the gateway would refuse this URL: accountId longer than/) });
  });
});
