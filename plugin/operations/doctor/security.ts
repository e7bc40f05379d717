import type { PluginConfig } from '../../../config/schema.js';
import { isPublicListener } from './address-scope.js';
import { ok, warn, type Check } from './check.js';

/**
 * What start-up lets through but an operator should hear before going live: the shipped example secret, secret
 * files other users can read (`warnings`: config/load.ts's, which `npm start` logs), a public listener with no
 * TRUSTED_PROXIES, and bots still carrying a previous secret.
 */
export function securityChecks(config: PluginConfig, warnings: readonly string[]): Check[] {
  const checks: Check[] = [];
  if (config.usesExampleSecret) {
    checks.push(
      warn(
        'BOTS',
        'still holds the shipped example client secret, with which anyone can sign a valid token: the gateway may only listen on loopback',
        'put your Kore bot credentials (botId, clientId, clientSecret) in BOTS, or in a file named by BOTS_FILE',
      ),
    );
  }
  // each already ends with its fix (chmod 600 it)
  for (const warning of warnings) checks.push(warn('secret file', warning));

  const rotating = config.bots.filter((bot) => bot.clientSecrets.length > 1);
  for (const bot of rotating) {
    checks.push(
      warn(
        'secret rotation',
        `bot ${bot.botId} lists ${bot.clientSecrets.length} client secrets: a rotation is under way, and tokens signed with any of them are accepted`,
        `once Kore signs with the new secret (the first), remove the others from ${bot.botId}'s clientSecret in BOTS`,
      ),
    );
  }
  if (!config.usesExampleSecret && rotating.length === 0) {
    checks.push(ok('BOTS', `${config.bots.length} bot${config.bots.length === 1 ? '' : 's'}, each with one client secret of its own`));
  }

  const { host, trustedProxies } = config.listen;
  if (isPublicListener(host) && trustedProxies.length === 0) {
    checks.push(
      warn(
        'TRUSTED_PROXIES',
        `empty while LISTEN_HOST ${host} is reachable from outside: behind a load balancer every caller would look like the balancer, and one sender of bad tokens would get them all refused by the per-address limit`,
        'list the load balancer addresses (or CIDR ranges) in TRUSTED_PROXIES; leave it empty only when Talkdesk connects to the gateway directly',
      ),
    );
  } else {
    checks.push(ok('listener', trustedProxies.length > 0 ? `LISTEN_HOST ${host}, behind TRUSTED_PROXIES ${trustedProxies.join(', ')}` : `LISTEN_HOST ${host} is not reachable from outside`));
  }
  return checks;
}
