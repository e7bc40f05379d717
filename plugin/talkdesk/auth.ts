import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import type { BotCredentials } from '../../config/schema.js';
import { SIP_USER } from '../../config/sip-grammar.js';
import { idProblem } from './codec.js';

/**
 * Talkdesk sends no credentials of its own (talkdesk-protocol.md §1), so the Voice Stream URL carries Kore's:
 * `?sipuri=…&token=<JWT>&botId=st-…&accountId=…&agentassist=false` (§6). The token is an HS256 JWT signed with the
 * bot's client secret, payload `{"appId":"<clientId>"}`. Checked before the WebSocket upgrade completes, so a
 * refused caller costs one HTTP response. Reasons never contain the token or the secret: they end up in logs.
 *
 * While a secret is rotated the bot lists several, current first, and a token signed with any of them is accepted:
 * `secretIndex` says which, so the operator sees when Kore has stopped signing with the old one.
 */

export interface UpgradeParams {
  /** the user part to call on CCAI, URL-decoded, e.g. `+17345551234` */
  sipuri: string;
  botId: string;
  /** Kore account id of the bot owner; '' when absent (only informative) */
  accountId: string;
  /** true for Kore's unidirectional Agent Assist stream */
  agentassist: boolean;
}

export type AuthenticatedUpgrade = {
  ok: true;
  bot: BotCredentials;
  /** the position in `bot.clientSecrets` of the secret the token was signed with: 0 is the current one */
  secretIndex: number;
  params: UpgradeParams;
};
/**
 * Why an upgrade was refused, as the metric label (`talkdesk_gw_auth_failures_total{reason}`) and the log's `cause`;
 * the sentence in `reason` is for the log and the HTTP body, and may be reworded freely.
 */
export type AuthFailureCause =
  | 'missing-sipuri'
  | 'missing-token'
  | 'missing-botid'
  | 'bad-sipuri'
  | 'bad-agentassist'
  | 'bad-account-id'
  | 'unknown-bot'
  | 'token-too-long'
  | 'token-expired'
  | 'token-invalid'
  | 'token-wrong-app'
  | 'rate-limited';
export type RefusedUpgrade = { ok: false; status: 400 | 401; cause: AuthFailureCause; reason: string };

/** Kore's tokens are a few hundred bytes; a far longer one is not a Kore token and is not worth an HMAC. */
const MAX_TOKEN_CHARS = 4096;
/** the longest phone number or SIP user we pass on; longer is garbage that would only bloat the INVITE */
const MAX_SIPURI_CHARS = 256;

export function authenticateUpgrade(
  query: URLSearchParams,
  bots: readonly BotCredentials[],
): AuthenticatedUpgrade | RefusedUpgrade {
  const sipuri = query.get('sipuri');
  if (!sipuri) return refuse(400, 'missing-sipuri', 'missing query parameter sipuri');
  const token = query.get('token');
  if (!token) return refuse(400, 'missing-token', 'missing query parameter token');
  const botId = query.get('botId');
  if (!botId) return refuse(400, 'missing-botid', 'missing query parameter botId');
  // URLSearchParams has already decoded %2B to "+". A space here is a "+" sent unencoded, which form decoding
  // turns into a space: the number would be wrong, so say how to fix the URL.
  if (sipuri.length > MAX_SIPURI_CHARS) return refuse(400, 'bad-sipuri', `sipuri too long: ${sipuri.length} characters, at most ${MAX_SIPURI_CHARS}`);
  if (!SIP_USER.test(sipuri)) {
    return refuse(400, 'bad-sipuri', 'sipuri must be a phone number or SIP user part (URL-encode "+" as %2B)');
  }
  const agentassist = parseFlag(query.get('agentassist'));
  if (agentassist === undefined) return refuse(400, 'bad-agentassist', 'agentassist must be true or false');
  const accountId = query.get('accountId') ?? '';
  const accountIdProblem = idProblem('accountId', accountId);
  if (accountIdProblem !== undefined) return refuse(400, 'bad-account-id', accountIdProblem);

  const bot = bots.find((b) => b.botId === botId);
  if (bot === undefined) return refuse(401, 'unknown-bot', 'unknown botId');
  if (token.length > MAX_TOKEN_CHARS) return refuse(401, 'token-too-long', `token longer than ${MAX_TOKEN_CHARS} characters`);

  const verified = verifyToken(token, secretKeysOf(bot));
  if (!verified.ok) return verified;
  const { payload, secretIndex } = verified;
  if (typeof payload === 'string' || payload['appId'] !== bot.clientId) {
    return refuse(401, 'token-wrong-app', "token appId does not match the bot's clientId");
  }
  return { ok: true, bot, secretIndex, params: { sipuri, botId, accountId, agentassist } };
}

/**
 * The token of a Voice Stream URL, as Kore makes it: HS256 over `{"appId":"<clientId>"}` and nothing else, with the
 * bot's current (first) secret. No `iat` or `exp`: Studio keeps the URL and sends the same token on every call.
 */
export function signToken(bot: BotCredentials): string {
  return jwt.sign({ appId: bot.clientId }, secretKeysOf(bot)[0]!, { algorithm: 'HS256', noTimestamp: true });
}

/**
 * Each bot's secrets as HMAC keys, made once. Given a string, jsonwebtoken first tries it as a PEM public key
 * (createPublicKey, which fails) on every verify: 0.3 ms of the event loop per token and secret, against 10 µs with
 * a KeyObject, paid by every call set up. signToken signs with the first of them. Keyed by the bot's object, so a new
 * configuration gets its own.
 */
const secretKeys = new WeakMap<BotCredentials, KeyObject[]>();
function secretKeysOf(bot: BotCredentials): KeyObject[] {
  let keys = secretKeys.get(bot);
  if (keys === undefined) {
    // the bytes jsonwebtoken itself would make of the string (UTF-8)
    keys = bot.clientSecrets.map((secret) => createSecretKey(Buffer.from(secret)));
    secretKeys.set(bot, keys);
  }
  return keys;
}

/**
 * The token checked against each secret in turn, at most MAX_SECRETS_PER_BOT HMACs. jsonwebtoken checks the
 * signature before any claim, so only its 'invalid signature' means "try the next secret": a malformed or expired
 * token is refused as it is, whichever secret signed it.
 */
function verifyToken(
  token: string,
  secrets: readonly KeyObject[],
): { ok: true; payload: string | JwtPayload; secretIndex: number } | RefusedUpgrade {
  let why = '';
  for (const [secretIndex, secret] of secrets.entries()) {
    try {
      // Pinning the algorithm rejects `alg: none` and RS256-header tokens (the key confusion attack) outright.
      return { ok: true, payload: jwt.verify(token, secret, { algorithms: ['HS256'] }), secretIndex };
    } catch (err) {
      why = (err as Error).message;
      if (err instanceof jwt.TokenExpiredError) return refuse(401, 'token-expired', `token rejected: ${why}`);
      if (why !== 'invalid signature') break;
    }
  }
  return refuse(401, 'token-invalid', `token rejected: ${why}`);
}

/**
 * Whether a Talkdesk account may stream. `start.accountSid` is set by Talkdesk itself, so it decides when present;
 * `customParameters.account_id` is the fallback for streams without it. An empty list allows every account.
 */
export function accountAllowed(allowlist: readonly string[], accountSid?: string, customAccountId?: string): boolean {
  if (allowlist.length === 0) return true;
  const account = accountSid || customAccountId;
  return account !== undefined && account !== '' && allowlist.includes(account);
}

function parseFlag(value: string | null): boolean | undefined {
  if (value === null || value === '') return false;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  return undefined;
}

function refuse(status: 400 | 401, cause: AuthFailureCause, reason: string): RefusedUpgrade {
  return { ok: false, status, cause, reason };
}
