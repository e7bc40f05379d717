import crypto, { createHmac } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { describe, expect, it, vi } from 'vitest';
import type { BotCredentials } from '../../../../config/schema.js';
import { accountAllowed, authenticateUpgrade } from '../../../../plugin/talkdesk/auth.js';

const bot: BotCredentials = { botId: 'st-1111', clientId: 'cs-aaaa', clientSecrets: ['bot-one-secret'] };
const other: BotCredentials = { botId: 'st-2222', clientId: 'cs-bbbb', clientSecrets: ['bot-two-secret'] };
const bots = [bot, other];

const sign = (payload: object, secret = bot.clientSecrets[0], options: jwt.SignOptions = {}) =>
  jwt.sign(payload, secret, { algorithm: 'HS256', ...options });
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** the query string exactly as Talkdesk sends it: sipuri URL-encoded (%2B), as in Kore's docs */
function query(params: Record<string, string | undefined>): URLSearchParams {
  const all: Record<string, string | undefined> = { sipuri: '+17345551234', token: sign({ appId: bot.clientId }), botId: bot.botId, accountId: '5f0c0a0b0c0d0e0f10111213', agentassist: 'false', ...params };
  const defined = Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined);
  return new URLSearchParams(new URLSearchParams(defined).toString());
}

function refused(params: Record<string, string | undefined>) {
  const result = authenticateUpgrade(query(params), bots);
  if (result.ok) throw new Error('expected a refusal');
  return result;
}

describe('authenticateUpgrade', () => {
  it('accepts a token signed with the bot secret whose appId is its clientId', () => {
    const result = authenticateUpgrade(query({}), bots);
    expect(result).toEqual({
      ok: true,
      bot,
      secretIndex: 0,
      params: { sipuri: '+17345551234', botId: 'st-1111', accountId: '5f0c0a0b0c0d0e0f10111213', agentassist: false },
    });
  });

  it('decodes %2B in sipuri and reads agentassist=true', () => {
    const result = authenticateUpgrade(new URLSearchParams(`sipuri=%2B4930123&token=${sign({ appId: 'cs-aaaa' })}&botId=st-1111&agentassist=true`), bots);
    expect(result).toMatchObject({ ok: true, params: { sipuri: '+4930123', agentassist: true, accountId: '' } });
  });

  it('accepts a token that is not expired yet', () => {
    expect(authenticateUpgrade(query({ token: sign({ appId: bot.clientId }, undefined, { expiresIn: 60 }) }), bots).ok).toBe(true);
  });

  it('picks the bot by botId, each with its own secret', () => {
    const result = authenticateUpgrade(query({ botId: 'st-2222', token: sign({ appId: 'cs-bbbb' }, 'bot-two-secret') }), bots);
    expect(result).toMatchObject({ ok: true, bot: other });
  });

  it.each(['sipuri', 'token', 'botId'])('refuses a missing %s with 400 naming it', (name) => {
    expect(refused({ [name]: undefined })).toMatchObject({ ok: false, status: 400, reason: `missing query parameter ${name}` });
    expect(refused({ [name]: '' }).reason).toBe(`missing query parameter ${name}`);
  });

  it.each([
    ['an @', '+1734@evil.example.com'],
    ['a space (an unencoded +)', ' 17345551234'],
    ['angle brackets', '<sip:1234>'],
    ['CR/LF', '1234\r\nX-Injected: 1'],
    ['a colon', 'sip:1234'],
  ])('refuses a sipuri with %s with 400', (_, sipuri) => {
    expect(refused({ sipuri })).toMatchObject({ status: 400, reason: expect.stringContaining('sipuri must be') });
  });

  it.each([257, 2048])('refuses a sipuri of %i characters with 400 saying it is too long', (length) => {
    expect(refused({ sipuri: '1'.repeat(length) })).toMatchObject({
      ok: false,
      status: 400,
      reason: `sipuri too long: ${length} characters, at most 256`,
    });
  });

  it.each(["alice.o'neil-(x)", '*97', 'user;phone-context=+1', 'a&b=c$d,e?f/g!h~i'])('accepts the RFC 3261 user characters in %s', (sipuri) => {
    expect(authenticateUpgrade(query({ sipuri }), bots).ok).toBe(true);
  });

  it.each([
    ['129 characters', 'a'.repeat(129), 'accountId longer than 128 characters'],
    ['a control character', 'acc\r\nX-Injected: 1', 'accountId has characters other than printable ASCII'],
  ])('refuses an accountId of %s with 400, as the start frame ids are (it may travel in a SIP header)', (_, accountId, reason) => {
    expect(refused({ accountId })).toMatchObject({ ok: false, status: 400, reason });
  });

  it('refuses an agentassist that is neither true nor false with 400', () => {
    expect(refused({ agentassist: 'maybe' })).toMatchObject({ status: 400, reason: 'agentassist must be true or false' });
  });

  it('refuses an unknown botId with 401', () => {
    expect(refused({ botId: 'st-9999' })).toMatchObject({ ok: false, status: 401, reason: 'unknown botId' });
  });

  it('refuses a token signed with another secret', () => {
    expect(refused({ token: sign({ appId: bot.clientId }, 'wrong-secret') })).toMatchObject({ ok: false, status: 401, reason: 'token rejected: invalid signature' });
  });

  it('refuses another bot\'s valid token', () => {
    expect(refused({ token: sign({ appId: 'cs-bbbb' }, 'bot-two-secret') }).status).toBe(401);
  });

  it('refuses an unsigned alg:none token', () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ appId: bot.clientId })}.`;
    expect(token.startsWith('eyJ')).toBe(true);
    expect(refused({ token })).toMatchObject({ ok: false, status: 401, reason: 'token rejected: jwt signature is required' });
  });

  it('refuses a token whose header claims RS256, even when HMAC-signed with the secret (key confusion)', () => {
    const head = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ appId: bot.clientId })}`;
    const token = `${head}.${createHmac('sha256', bot.clientSecrets[0]).update(head).digest('base64url')}`;
    expect(refused({ token })).toMatchObject({ ok: false, status: 401, reason: 'token rejected: invalid algorithm' });
  });

  it('refuses a token whose appId is not the bot\'s clientId, or has none', () => {
    expect(refused({ token: sign({ appId: 'cs-other' }) })).toMatchObject({ ok: false, status: 401, reason: "token appId does not match the bot's clientId" });
    expect(refused({ token: sign({ sub: 'x' }) }).status).toBe(401);
  });

  it('refuses an expired token', () => {
    const token = sign({ appId: bot.clientId, exp: Math.floor(Date.now() / 1000) - 60 });
    expect(refused({ token })).toMatchObject({ ok: false, status: 401, reason: 'token rejected: jwt expired' });
  });

  it('refuses a malformed token', () => {
    expect(refused({ token: 'not-a-jwt' })).toMatchObject({ ok: false, status: 401, reason: 'token rejected: jwt malformed' });
  });

  it('refuses a token over 4096 characters without verifying it', () => {
    expect(refused({ token: sign({ appId: bot.clientId, pad: 'x'.repeat(4096) }) })).toMatchObject({ status: 401, reason: 'token longer than 4096 characters' });
  });

  it('never puts the token or the secret in its reason', () => {
    const token = sign({ appId: bot.clientId }, 'wrong-secret');
    for (const params of [{ token }, { token, botId: 'st-9999' }, { token: `${token}x` }, { token: token.slice(0, 20) }]) {
      const { reason } = refused(params);
      expect(reason).not.toContain(token.slice(0, 20));
      expect(reason).not.toContain('secret');
    }
  });
});

describe('authenticateUpgrade while a secret is rotated', () => {
  const rotating: BotCredentials = { botId: 'st-1111', clientId: 'cs-aaaa', clientSecrets: ['new-secret', 'old-secret', 'older-secret'] };
  const auth = (secret: string, payload: object = { appId: rotating.clientId }) =>
    authenticateUpgrade(query({ token: sign(payload, secret) }), [rotating, other]);

  it.each([
    ['the current secret', 'new-secret', 0],
    ['the previous one', 'old-secret', 1],
    ['the one before', 'older-secret', 2],
  ])('accepts a token signed with %s and says which by position', (_, secret, secretIndex) => {
    expect(auth(secret)).toMatchObject({ ok: true, bot: rotating, secretIndex });
  });

  it("refuses a token signed with none of them, nor with another bot's secret", () => {
    expect(auth('retired-secret')).toMatchObject({ ok: false, status: 401, cause: 'token-invalid', reason: 'token rejected: invalid signature' });
    expect(auth('bot-two-secret')).toMatchObject({ ok: false, cause: 'token-invalid' });
  });

  it('judges the claims of a token signed with an old secret as strictly as with the current one', () => {
    expect(auth('old-secret', { appId: 'cs-bbbb' })).toMatchObject({ ok: false, cause: 'token-wrong-app' });
    expect(auth('older-secret', { appId: rotating.clientId, exp: 1 })).toMatchObject({ ok: false, cause: 'token-expired' });
  });

  it('spends one HMAC per secret on a token none signed, and none past the first on a malformed one', () => {
    const unsigned = query({ token: sign({ appId: rotating.clientId }, 'retired-secret') });
    const malformed = query({ token: 'not-a-jwt' });
    const hmacs = vi.spyOn(crypto, 'createHmac');
    try {
      expect(authenticateUpgrade(unsigned, [rotating]).ok).toBe(false);
      expect(hmacs).toHaveBeenCalledTimes(rotating.clientSecrets.length);
      hmacs.mockClear();
      expect(authenticateUpgrade(malformed, [rotating]).ok).toBe(false);
      expect(hmacs).not.toHaveBeenCalled();
    } finally {
      hmacs.mockRestore();
    }
  });
});

describe('accountAllowed', () => {
  it('allows any account when the list is empty', () => {
    expect(accountAllowed([], undefined, undefined)).toBe(true);
    expect(accountAllowed([], 'acc-x')).toBe(true);
  });

  it('checks start.accountSid when present', () => {
    expect(accountAllowed(['acc-1'], 'acc-1')).toBe(true);
    expect(accountAllowed(['acc-1'], 'acc-2', 'acc-1')).toBe(false);
  });

  it('falls back to customParameters.account_id without an accountSid', () => {
    expect(accountAllowed(['acc-1'], undefined, 'acc-1')).toBe(true);
    expect(accountAllowed(['acc-1'], '', 'acc-1')).toBe(true);
    expect(accountAllowed(['acc-1'], undefined, 'acc-2')).toBe(false);
  });

  it('refuses a stream that names no account while a list is set', () => {
    expect(accountAllowed(['acc-1'])).toBe(false);
  });
});

describe('the cause of every refusal auth.ts makes: its metric label, apart from the sentence', () => {
  const bot1: BotCredentials = { botId: 'st-1', clientId: 'cs-1', clientSecrets: ['secret', 'old-secret'] };
  const good = { sipuri: '+1555', token: jwt.sign({ appId: 'cs-1' }, 'secret'), botId: 'st-1' };
  const cases: Array<[string, Record<string, string>, string]> = [
    ['no sipuri', { ...good, sipuri: '' }, 'missing-sipuri'],
    ['no token', { ...good, token: '' }, 'missing-token'],
    ['no botId', { ...good, botId: '' }, 'missing-botid'],
    ['bad sipuri', { ...good, sipuri: 'a b' }, 'bad-sipuri'],
    ['bad agentassist', { ...good, agentassist: 'maybe' }, 'bad-agentassist'],
    ['long sipuri', { ...good, sipuri: '1'.repeat(2048) }, 'bad-sipuri'],
    ['long accountId', { ...good, accountId: 'a'.repeat(129) }, 'bad-account-id'],
    ['unknown bot', { ...good, botId: 'st-2' }, 'unknown-bot'],
    ['huge token', { ...good, token: 'x'.repeat(5000) }, 'token-too-long'],
    ['expired', { ...good, token: jwt.sign({ appId: 'cs-1', exp: 1 }, 'secret') }, 'token-expired'],
    ['wrong secret', { ...good, token: jwt.sign({ appId: 'cs-1' }, 'other') }, 'token-invalid'],
    ['wrong appId', { ...good, token: jwt.sign({ appId: 'cs-2' }, 'secret') }, 'token-wrong-app'],
    ['wrong appId, old secret', { ...good, token: jwt.sign({ appId: 'cs-2' }, 'old-secret') }, 'token-wrong-app'],
    ['expired, old secret', { ...good, token: jwt.sign({ appId: 'cs-1', exp: 1 }, 'old-secret') }, 'token-expired'],
  ];
  it.each(cases.map(([name, params, kind]) => [name, kind, params] as const))('%s → %s', (_name, kind, params) => {
    const result = authenticateUpgrade(new URLSearchParams(params), [bot1]);
    expect(result).toMatchObject({ ok: false, cause: kind });
  });
});
