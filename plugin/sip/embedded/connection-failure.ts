/**
 * Operator words for why a SIP connection (TCP or TLS) to CCAI failed, with the setting to check. A TLS failure is
 * almost always configuration on one side or the other, and node's codes (CERT_HAS_EXPIRED, alert numbers) do not
 * say which; these messages end up in the call's `sip-transport` log line.
 */
export interface ConnectionFailureContext {
  protocol: 'TCP' | 'TLS';
  /** host:port we connected to */
  peer: string;
  /** the name the CCAI certificate must carry (CCAI_TLS_SERVERNAME, else CCAI_SIP_HOST) */
  expectedName?: string;
  /** we present a client certificate (SIP_TLS_CERT_FILE) */
  clientCertificate?: boolean;
  /** the connection was up (TLS: handshake and verification done) and the peer had sent nothing yet */
  closedRightAfterHandshake?: boolean;
}

const UNTRUSTED_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** alerts a TLS server sends about our client certificate (RFC 8446 §6.2: 116 certificate_required, 42, 48, 45) */
const CLIENT_CERT_ALERTS = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
]);

export function describeConnectionFailure(err: Error | undefined, ctx: ConnectionFailureContext): string {
  return `${ctx.protocol} connection to ${ctx.peer} failed: ${reason(err as NodeJS.ErrnoException | undefined, ctx)}`;
}

function reason(err: NodeJS.ErrnoException | undefined, ctx: ConnectionFailureContext): string {
  const code = err?.code ?? 'closed';
  const name = ctx.expectedName ?? 'the CCAI host';
  if (code === 'CERT_HAS_EXPIRED') {
    return `the CCAI server certificate (or one in its chain) has expired (${code}); it must be renewed on the CCAI side, or CCAI_TLS_CA_FILE holds an outdated CA`;
  }
  if (code === 'CERT_NOT_YET_VALID') return `the CCAI server certificate is not valid yet (${code}); check this host's clock`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the CCAI server certificate is not valid for the name "${name}" (${code}: ${err?.message}); set CCAI_TLS_SERVERNAME to a name the certificate carries, or CCAI_SIP_HOST to the host it was issued for`;
  }
  if (UNTRUSTED_CA.has(code)) {
    return `the CCAI server certificate is signed by a CA we do not trust (${code}); set CCAI_TLS_CA_FILE to the CA bundle that signs it`;
  }
  if (CLIENT_CERT_ALERTS.has(code) || ctx.closedRightAfterHandshake) {
    const why = err ? code : 'closed right after the handshake';
    return ctx.clientCertificate
      ? `the CCAI server refused our client certificate (${why}); check that SIP_TLS_CERT_FILE is signed by a CA the CCAI server trusts`
      : `the CCAI server requires a client certificate (${why}); set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE`;
  }
  // TLS 1.2 servers answer a missing client certificate with alert 40, which also means "no common cipher"
  if (code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    return ctx.clientCertificate
      ? `the CCAI server refused the TLS handshake (${code}): no common cipher, or it does not accept our client certificate (SIP_TLS_CERT_FILE)`
      : `the CCAI server refused the TLS handshake (${code}): it most likely requires a client certificate; set SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE (otherwise there is no common cipher)`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return `the peer does not speak TLS on that port (${code}); check CCAI_SIP_PORT and CCAI_SIP_TRANSPORT`;
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' || code === 'ERR_SSL_UNSUPPORTED_PROTOCOL') {
    return `no common TLS version (${code}); this gateway needs TLS 1.2 or later`;
  }
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
    return `${code}; check CCAI_SIP_HOST, CCAI_SIP_PORT and CCAI_SIP_TRANSPORT`;
  }
  if (!err) return 'closed by the peer';
  return err.code ? `${code}: ${err.message}` : err.message;
}
