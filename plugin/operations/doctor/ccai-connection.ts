import { connect, isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { PluginConfig } from '../../../config/schema.js';
import { hostPort } from '../../sip/invite-target.js';
import { TargetResolver } from '../../sip/embedded/target-resolver.js';
import { describeConnectionFailure } from '../../sip/embedded/connection-failure.js';
import { TlsFlavor } from '../../sip/embedded/transport-tls.js';
import type { Destination } from '../../sip/embedded/transport.js';
import { daysUntil, EXPIRY_WARNING_DAYS, fail, ok, warn, type Check } from './check.js';

/**
 * After a TLS handshake, how long to wait for the server to refuse our client certificate: under TLS 1.3 it does
 * so only after our side has finished the handshake, a round trip later (RFC 8446 §4.4.2.4)
 */
export const CLIENT_CERT_VERDICT_MS = 500;

export interface CcaiConnection {
  checks: Check[];
  /** the first target CCAI_SIP_HOST (and CCAI_SIP_PORT) led to, as the INVITE would find it; absent when none */
  target?: Destination;
  /** false when the transport failed: an OPTIONS could only fail the same way */
  usable: boolean;
}

/**
 * CCAI_SIP_HOST resolves as the INVITE's request-URI does (RFC 3263 with the embedded stack's own TargetResolver:
 * NAPTR, SRV, A, on CCAI_DNS_SERVERS; the first target is the one checked further), the
 * transport connects (TCP, TLS; UDP has no connection to test), and for TLS what the gateway's TLS does: the same
 * options (TlsFlavor: CCAI_TLS_CA_FILE, CCAI_TLS_VERIFY, CCAI_TLS_SERVERNAME, SIP_TLS_CERT_FILE for mTLS), the same
 * operator words for a failure (connection-failure.ts), and the certificate's days to expiry.
 */
export async function ccaiConnectionChecks(config: PluginConfig, log: Logger, timeoutMs: number): Promise<CcaiConnection> {
  const { ccaiHost, ccaiPort, ccaiTransport, ccaiScheme, dnsServers } = config.sip;
  const checks: Check[] = [];
  const uri = `${ccaiScheme}:${hostPort(ccaiHost, ccaiPort)};transport=${ccaiTransport}`;
  let peer: Destination;
  try {
    const targets = await new TargetResolver({ servers: dnsServers }).targets(uri, { protocol: PROTOCOLS[ccaiTransport], family: 4 });
    peer = targets[0]!;
    const found = targets.map((t) => `${t.host}:${t.port}`).join(', ');
    const how = isIP(ccaiHost) ? 'is an address: nothing to look up' : ccaiPort === undefined ? `resolves by DNS (RFC 3263: NAPTR, SRV, A) to ${found}` : `resolves to ${found}`;
    checks.push(ok('CCAI host', `${hostPort(ccaiHost, ccaiPort)} ${how}${targets.length > 1 ? `; the first (${found.split(', ')[0]}) is checked below, the INVITE tries the others in turn` : ''}`));
  } catch (err) {
    const dns = dnsServers.length > 0 ? `CCAI_DNS_SERVERS (${dnsServers.join(', ')})` : "this host's DNS resolver (/etc/resolv.conf)";
    checks.push(fail('CCAI host', `${hostPort(ccaiHost, ccaiPort)} does not resolve: ${(err as Error).message}`, `check CCAI_SIP_HOST (and CCAI_SIP_PORT), and ${dns}`));
    return { checks, usable: false };
  }
  const where = `${peer.host}:${peer.port}`;
  if (ccaiTransport === 'udp') {
    checks.push(ok('SIP transport', `UDP to ${where}: connectionless, so the OPTIONS below is the test`));
    return { checks, target: peer, usable: true };
  }
  const transport = ccaiTransport === 'tcp' ? await tcpCheck(peer, config.sip.bindAddress, timeoutMs) : await tlsChecks(config, peer, log, timeoutMs);
  checks.push(...transport);
  return { checks, target: peer, usable: transport.every((c) => c.status !== 'fail') };
}

async function tcpCheck(peer: Destination, localAddress: string, timeoutMs: number): Promise<Check[]> {
  const where = `${peer.host}:${peer.port}`;
  const socket = connect({ host: peer.host, port: peer.port, localAddress });
  const outcome = await settle(socket, 'connect', timeoutMs);
  socket.destroy();
  if (outcome.kind !== 'event') return [fail('SIP transport', describeConnectionFailure(connectionError(outcome, timeoutMs), { protocol: 'TCP', peer: where }))];
  return [ok('SIP transport', `TCP to ${where} connects`)];
}

async function tlsChecks(config: PluginConfig, peer: Destination, log: Logger, timeoutMs: number): Promise<Check[]> {
  const { tls, ccaiHost } = config.sip;
  const flavor = new TlsFlavor({ tls, ccaiHost, log });
  try {
    // builds the client options the gateway uses; the listener it returns for SIP_TLS_CERT_FILE is never started
    await flavor.start(() => undefined);
  } catch (err) {
    return [fail('SIP transport', (err as Error).message)];
  }
  // TlsFlavor connects with node:tls, whatever the StreamFlavor seam says
  const socket = flavor.connect(peer, config.sip.bindAddress).socket as TLSSocket;
  const where = `${peer.host}:${peer.port}`;
  const clientCertificate = tls.certFile !== undefined;
  try {
    const connected = await settle(socket, 'secureConnect', timeoutMs);
    if (connected.kind !== 'event') {
      return [fail('SIP transport', flavor.describe(connectionError(connected, timeoutMs), peer, { closedRightAfterHandshake: false }))];
    }
    const checks: Check[] = [ok('SIP transport', `TLS to ${where} connects (${socket.getProtocol() ?? 'TLS'})`), certificateCheck(socket, tls.verify, tls.serverName ?? ccaiHost)];
    // the server speaks first in nothing SIP does: any event here is the end of the connection
    const verdict = await settle(socket, 'data', CLIENT_CERT_VERDICT_MS);
    if (verdict.kind === 'error' || verdict.kind === 'closed') {
      checks.push(fail('mTLS', flavor.describe(verdict.kind === 'error' ? verdict.err : undefined, peer, { closedRightAfterHandshake: true })));
    } else if (clientCertificate) {
      checks.push(ok('mTLS', `the CCAI server kept the connection after our client certificate (SIP_TLS_CERT_FILE=${tls.certFile})`));
    }
    return checks;
  } finally {
    socket.destroy();
  }
}

/** The CCAI certificate as the handshake left it: verified (or why not, with CCAI_TLS_VERIFY=false), and its days left. */
function certificateCheck(socket: TLSSocket, verify: boolean, name: string): Check {
  const cert = socket.getPeerCertificate();
  const subject = cert.subjectaltname ?? cert.subject?.CN ?? 'no name';
  const issuer = cert.issuer?.CN ?? cert.issuer?.O ?? 'an unnamed issuer';
  if (!verify) {
    const why = socket.authorizationError
      ? `, and it would fail: ${describeConnectionFailure(Object.assign(new Error(String(socket.authorizationError)), { code: String(socket.authorizationError) }), { protocol: 'TLS', peer: name, expectedName: name })}`
      : '';
    return warn('CCAI certificate', `not verified (CCAI_TLS_VERIFY=false)${why}`, 'set CCAI_TLS_VERIFY=true (with CCAI_TLS_CA_FILE for a private CA): anyone on the path can impersonate CCAI');
  }
  const days = daysUntil(new Date(cert.valid_to));
  const detail = `verifies for ${name} (${subject}), issued by ${issuer}, ${days} days left`;
  if (days < EXPIRY_WARNING_DAYS) {
    return warn('CCAI certificate', `${detail} (expires ${cert.valid_to})`, 'ask the CCAI side to renew it: calls fail the day it expires');
  }
  return ok('CCAI certificate', detail);
}

const PROTOCOLS = { udp: 'UDP', tcp: 'TCP', tls: 'TLS' } as const;

/** what ended a wait on a socket: the awaited event, an error, the peer closing, or the time running out */
type Outcome = { kind: 'event' } | { kind: 'error'; err: Error } | { kind: 'closed' } | { kind: 'timeout' };

function settle(socket: Socket, event: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const done = (outcome: Outcome): void => {
      clearTimeout(timer);
      socket.off(event, onEvent).off('error', onError).off('close', onClose);
      resolve(outcome);
    };
    const onEvent = (): void => done({ kind: 'event' });
    const onError = (err: Error): void => done({ kind: 'error', err });
    const onClose = (): void => done({ kind: 'closed' });
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    socket.once(event, onEvent).once('error', onError).once('close', onClose);
  });
}

/** the error a failed wait for a connection stands for, as describeConnectionFailure reads it (undefined: closed) */
function connectionError(outcome: Outcome, timeoutMs: number): Error | undefined {
  if (outcome.kind === 'error') return outcome.err;
  if (outcome.kind === 'timeout') return Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
  return undefined;
}
