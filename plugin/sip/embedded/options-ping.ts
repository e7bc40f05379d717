import type { Logger } from 'pino';
import { SipFailure } from '../errors.js';
import type { ClientTransactionUser } from './client-transactions.js';
import { newBranch, newCallId, newTag } from './ids.js';
import type { IncomingMessage } from './message.js';
import type { OutgoingRequest } from './message-builder.js';
import type { SipStack } from './stack.js';
import { parseSipUri, uriWithoutParams } from './uri.js';

/** The final answer to an out-of-dialog OPTIONS (RFC 3261 §11) and how long it took from sending. */
export interface OptionsAnswer {
  status: number;
  reason: string;
  /** from the request handed to the transport (after the name lookup) to the final response */
  ms: number;
  /** the peer's User-Agent or Server header, when it sends one */
  agent?: string;
}

/**
 * One OPTIONS to `requestUri` on its own non-INVITE client transaction: the way `npm run doctor` asks whether CCAI
 * answers and how fast. Resolves with the final response, whatever its status (any answer proves the path); rejects
 * with a SipFailure (`timeout` at Timer F, `transport` for DNS, connection and TLS failures in operator words).
 */
export async function sendOptions(stack: SipStack, requestUri: string, fromUser: string, log: Logger): Promise<OptionsAnswer> {
  const target = parseSipUri(requestUri);
  if (!target) throw new SipFailure('transport', `not a SIP URI: ${requestUri}`);
  const destination = await stack.resolve(requestUri);
  const request: OutgoingRequest = {
    method: 'OPTIONS',
    uri: requestUri,
    headers: [
      ['Via', stack.via(newBranch())],
      ['Max-Forwards', '70'],
      ['From', `<${stack.localUri(fromUser)}>;tag=${newTag()}`],
      ['To', `<${uriWithoutParams(target)}>`],
      ['Call-ID', newCallId()],
      ['CSeq', '1 OPTIONS'],
      ['Accept', 'application/sdp'],
      ['User-Agent', stack.userAgent],
    ],
    body: '',
  };
  return new Promise<OptionsAnswer>((resolve, reject) => {
    const sentAt = performance.now();
    const user: ClientTransactionUser = {
      onResponse(response: IncomingMessage) {
        const status = response.sip.status!;
        if (status < 200) return;
        const agent = response.sip.get('user-agent') ?? response.sip.get('server');
        resolve({ status, reason: response.sip.reason ?? '', ms: Math.round(performance.now() - sentAt), ...(agent ? { agent } : {}) });
      },
      onFailure(failure: SipFailure) {
        reject(failure);
      },
    };
    stack.startRequest(request, destination, log, user);
  });
}
