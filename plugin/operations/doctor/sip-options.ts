import type { Logger } from 'pino';
import type { PluginConfig } from '../../../config/schema.js';
import { EmbeddedSipBackend } from '../../sip/embedded/backend.js';
import type { Destination } from '../../sip/embedded/transport.js';
import { isSipFailure } from '../../sip/errors.js';
import { fail, ok, warn, type Check } from './check.js';

/** slower than this and a caller hears the delay before the bot's first word */
const SLOW_ANSWER_MS = 1_000;
const TITLE = 'SIP OPTIONS';

/**
 * One OPTIONS to the CCAI target the INVITE would try first (`sip:<its address>:<its port>;transport=…`) on
 * the embedded SIP stack, with the gateway's transport, TLS settings and advertised address, from an ephemeral
 * port so a running gateway keeps its own. With SIP_BACKEND=drachtio it still goes from this host through the
 * embedded stack, not through drachtio-server: it shows that CCAI answers this host; drachtioChecks shows that
 * drachtio-server has the transport. Unanswered after `timeoutMs` (Timer F, shortened) → ✗.
 */
export async function sipOptionsCheck(config: PluginConfig, target: Destination, log: Logger, timeoutMs: number): Promise<Check> {
  const { sip } = config;
  const uri = `${sip.ccaiScheme}:${target.host}:${target.port};transport=${sip.ccaiTransport}`;
  const backend = new EmbeddedSipBackend({
    bindAddress: sip.bindAddress,
    port: 0,
    advertisedAddress: sip.advertisedAddress,
    transport: sip.ccaiTransport,
    tls: { ...sip.tls, port: 0 },
    ccaiHost: sip.ccaiHost,
    log,
    timers: { F: timeoutMs },
  });
  try {
    await backend.start();
    const answer = await backend.options(uri, sip.fromUser);
    const said = `${uri} answered ${answer.status} ${answer.reason} in ${answer.ms} ms${answer.agent ? ` (${answer.agent})` : ''}`;
    if (answer.status === 401 || answer.status === 407) {
      return sip.auth
        ? ok(TITLE, `${said}: it asks for credentials, which calls answer with CCAI_SIP_AUTH_USERNAME`)
        : warn(TITLE, `${said}: it asks for credentials, and none are set`, 'set CCAI_SIP_AUTH_USERNAME and CCAI_SIP_AUTH_PASSWORD if CCAI challenges calls too');
    }
    if (answer.status === 403) {
      return warn(TITLE, `${said}: CCAI refuses this gateway`, `ask the CCAI side to allow this gateway's address (SIP_ADVERTISED_ADDRESS ${sip.advertisedAddress})`);
    }
    // 405/501: it does not do OPTIONS, yet it answered, which is what was asked
    if (answer.status >= 300 && answer.status !== 405 && answer.status !== 501) {
      return warn(TITLE, said, 'check CCAI_SIP_HOST and CCAI_SIP_PORT name the CCAI SIP server');
    }
    if (answer.ms > SLOW_ANSWER_MS) return warn(TITLE, `${said}: slow`, 'check the network path to CCAI (a congested or distant link)');
    return ok(TITLE, said);
  } catch (err) {
    const message = (err as Error).message;
    if (isSipFailure(err) && err.kind === 'timeout') {
      return fail(
        TITLE,
        `no answer from ${uri} within ${timeoutMs} ms`,
        `check CCAI_SIP_HOST, CCAI_SIP_PORT and CCAI_SIP_TRANSPORT, that firewalls let SIP through both ways, and that CCAI allows this host (SIP_ADVERTISED_ADDRESS ${sip.advertisedAddress})`,
      );
    }
    return fail(TITLE, message);
  } finally {
    await backend.stop();
  }
}
