import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { PluginConfig } from '../../../config/schema.js';
import { daysUntil, EXPIRY_WARNING_DAYS, fail, ok, warn, type Check } from './check.js';

const TITLE = 'wss certificate';

/**
 * The certificate Talkdesk sees (TLS_CERT_FILE/TLS_KEY_FILE): it parses, the key is its pair, it is valid for
 * PUBLIC_HOST when that is set, and how long it has left. The gateway reloads it on change (tls-reload.ts), so
 * a renewal needs no restart, but one that did not happen shows here first.
 */
export function wssCertificateChecks(listen: PluginConfig['listen'], now = Date.now()): Check[] {
  const { tlsCertFile, tlsKeyFile } = listen;
  if (tlsCertFile === undefined || tlsKeyFile === undefined) {
    return [ok(TITLE, 'none (TLS_CERT_FILE unset): the gateway serves plain ws://, so TLS must end in front of it')];
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(tlsCertFile));
  } catch (err) {
    return [fail(TITLE, `TLS_CERT_FILE=${tlsCertFile} is not a PEM certificate (${(err as Error).message})`, 'point TLS_CERT_FILE at the certificate (and its chain) in PEM')];
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(tlsKeyFile));
  } catch (err) {
    return [fail(TITLE, `TLS_KEY_FILE=${tlsKeyFile} is not a PEM private key (${(err as Error).message})`, 'point TLS_KEY_FILE at the private key of TLS_CERT_FILE, in PEM, unencrypted')];
  }
  if (!cert.checkPrivateKey(key)) {
    return [fail(TITLE, `TLS_KEY_FILE=${tlsKeyFile} is not the key of TLS_CERT_FILE=${tlsCertFile}`, 'set TLS_CERT_FILE and TLS_KEY_FILE to one certificate and its own key')];
  }
  const checks: Check[] = [];
  const days = daysUntil(new Date(cert.validTo), now);
  const names = cert.subjectAltName ?? cert.subject;
  if (days < 0) {
    checks.push(fail(TITLE, `${tlsCertFile} (${names}) expired on ${cert.validTo}: Talkdesk refuses it`, 'renew it (certbot renew, or your CA), then the gateway picks it up by itself'));
  } else if (days < EXPIRY_WARNING_DAYS) {
    checks.push(warn(TITLE, `${tlsCertFile} (${names}) expires in ${days} days (${cert.validTo})`, 'renew it now: check that certbot or cert-manager renewals run'));
  } else {
    checks.push(ok(TITLE, `${tlsCertFile} (${names}), its key matches, ${days} days left`));
  }
  const host = listen.publicHost?.replace(/:\d+$/, '');
  if (host !== undefined) {
    const matches = isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
    if (!matches) {
      checks.push(warn(TITLE, `not valid for PUBLIC_HOST ${host} (it names ${names}): Talkdesk would refuse the connection`, 'use a certificate issued for PUBLIC_HOST, or set PUBLIC_HOST to a name it carries'));
    }
  }
  return checks;
}
