import { EXAMPLE_CLIENT_SECRET } from '../../config/load.js';
import type { BotCredentials, PluginConfig } from '../../config/schema.js';
import { authenticateUpgrade, signToken } from './auth.js';
import { TALKDESK_PATH } from './server.js';

/**
 * The Voice Stream URL to paste into Talkdesk Studio's *Connect to Virtual Agent Voice* component for one bot and
 * number (protocol notes §6), its token signed with the bot's current secret. The URL is checked with the gateway's
 * own upgrade check before it is handed out, so what is printed is what the gateway accepts.
 */
export interface StudioUrlRequest {
  botId: string;
  /** the number attached to the Kore flow, e.g. `+17345551234`; URL-encoded here */
  sipuri: string;
  /** Kore account id of the bot owner: informative, left out when not given */
  accountId?: string;
  /** true for the unidirectional Agent Assist stream */
  agentassist?: boolean;
}

export type StudioUrl =
  /** notes: for the operator, beside the URL (which secret signed it, an example secret) */
  | { ok: true; url: string; notes: string[] }
  | { ok: false; error: string };

export function studioUrl(config: PluginConfig, request: StudioUrlRequest): StudioUrl {
  const host = config.listen.publicHost;
  if (host === undefined) {
    return {
      ok: false,
      error: 'PUBLIC_HOST is not set: set it to the host name (and :port when not 443) Talkdesk reaches this gateway at, e.g. PUBLIC_HOST=gw.example.com',
    };
  }
  const bot = config.bots.find((b) => b.botId === request.botId);
  if (bot === undefined) {
    const known = config.bots.map((b) => b.botId).join(', ');
    return { ok: false, error: `no bot ${JSON.stringify(request.botId)} in BOTS (it lists ${known}); give one of those with --bot` };
  }
  const url = `wss://${host}${TALKDESK_PATH}?${voiceStreamQuery(bot, request)}`;

  const check = authenticateUpgrade(new URL(url).searchParams, config.bots);
  if (!check.ok) return { ok: false, error: `the gateway would refuse this URL: ${check.reason}` };

  const notes: string[] = [];
  if (bot.clientSecrets.length > 1) {
    notes.push(`${bot.botId} lists ${bot.clientSecrets.length} secrets: the token is signed with the first, the current one (secretIndex 0)`);
  }
  if (bot.clientSecrets[0] === EXAMPLE_CLIENT_SECRET) {
    notes.push(`${bot.botId} holds the shipped EXAMPLE secret: anyone can sign this token; put your Kore bot's credentials in BOTS`);
  }
  return { ok: true, url, notes };
}

/** The Voice Stream URL's query for one bot and number (protocol notes §6), its token signed with the current secret. */
export function voiceStreamQuery(bot: BotCredentials, request: Omit<StudioUrlRequest, 'botId'>): string {
  const query = new URLSearchParams({ sipuri: request.sipuri, token: signToken(bot), botId: bot.botId });
  if (request.accountId !== undefined) query.set('accountId', request.accountId);
  query.set('agentassist', String(request.agentassist ?? false));
  return query.toString();
}
