/** The validated, typed configuration the rest of the plugin reads. Built by load.ts from jambonz-app.json. */

export type SipTransport = 'udp' | 'tcp' | 'tls';

export interface BotCredentials {
  /** Kore bot id, `st-…`, the `botId` query parameter */
  botId: string;
  /** Kore client id, `cs-…`: the JWT's `appId` must equal it */
  clientId: string;
  /**
   * Kore client secrets, the HS256 keys a JWT may be signed with: the first is current, the others are accepted
   * while a rotation is under way (at most MAX_SECRETS_PER_BOT, as each costs an HMAC per refused token)
   */
  clientSecrets: readonly [current: string, ...previous: string[]];
}

/** Talkdesk values a SIP header can carry to the bot */
export type TalkdeskField = 'callSid' | 'streamSid' | 'interactionId' | 'accountSid' | 'botId' | 'accountId' | 'sipuri';
export const TALKDESK_FIELDS: readonly TalkdeskField[] = [
  'callSid', 'streamSid', 'interactionId', 'accountSid', 'botId', 'accountId', 'sipuri',
];

/**
 * One way a bot's BYE says "escalate". The rule matches when `header` is present and, with `match`, its (decoded)
 * value matches the regular expression. The ring group is, in order: the JSON `field` of the decoded value, the
 * first capture group of `match`, the rule's `ringGroup`, the default ring group.
 */
export interface EscalationRule {
  name?: string;
  header: string;
  /** `uui`: User-to-User hex (with `;encoding=hex`) or text, parameters stripped. `text` (default): as is. */
  decode?: 'text' | 'uui';
  match?: string;
  /** dot path into the decoded value parsed as JSON, e.g. `queue` or `routing.ringGroup` */
  field?: string;
  ringGroup?: string;
}

export interface SipTlsConfig {
  /** local port of the SIP-over-TLS listener behind our Contact (a bot may open a new connection for its BYE); 0 = any */
  port: number;
  /** our certificate: served by the listener and presented as a client certificate (mTLS) */
  certFile?: string;
  keyFile?: string;
  /** CA bundle that signs the CCAI server certificate; system CAs when unset */
  caFile?: string;
  /** verify the CCAI server certificate (chain and name); turning it off is logged at every start */
  verify: boolean;
  /** name checked in the CCAI certificate and sent as SNI; the CCAI host when unset */
  serverName?: string;
}

export interface PluginConfig {
  /**
   * `trustedProxies`: addresses and CIDR ranges whose X-Forwarded-For names the client (plugin/talkdesk/client-address.ts).
   * `publicHost`: `host[:port]` Talkdesk reaches the listener at, for the Voice Stream URL (`npm run studio-url`).
   */
  listen: { host: string; port: number; trustedProxies: string[]; tlsCertFile?: string; tlsKeyFile?: string; publicHost?: string };
  bots: BotCredentials[];
  /** true while a bot still uses the shipped example secret: then only loopback listening is allowed */
  usesExampleSecret: boolean;
  /** Talkdesk account ids allowed (start.accountSid / customParameters.account_id); empty = any */
  talkdeskAccountAllowlist: string[];
  sip: {
    backend: 'embedded' | 'drachtio';
    bindAddress: string;
    /** local SIP port; 0 = any free port */
    port: number;
    /** address put in Via/Contact (NAT); defaults to bindAddress */
    advertisedAddress: string;
    ccaiHost: string;
    /** CCAI_SIP_PORT; absent: the request-URI names none, and the embedded backend finds targets by NAPTR/SRV (RFC 3263) */
    ccaiPort?: number;
    /** CCAI_DNS_SERVERS: `ip[:port]` entries for the embedded backend's lookups; empty: the system's resolvers */
    dnsServers: string[];
    /** CCAI_TARGET_TIMEOUT_MS: how long a CCAI target may stay silent before the INVITE goes to the next (embedded) */
    targetTimeoutMs: number;
    ccaiTransport: SipTransport;
    /** user part of From/Contact */
    fromUser: string;
    /** `sips:` request-URI (RFC 3261 §19.1.1); only with the tls transport */
    ccaiScheme: 'sip' | 'sips';
    /**
     * addresses and CIDR ranges CCAI may send in-dialog requests and media from besides the call's own peer hosts
     * (plugin/sip/dialog-peer.ts)
     */
    ccaiSourceAddresses: string[];
    /** header name → Talkdesk value it carries */
    headers: Record<string, TalkdeskField>;
    inviteTimeoutMs: number;
    /** CCAI_SIP_AUTH_*: what a 401/407 to the INVITE is answered with (embedded backend) */
    auth?: { username: string; password: string; realm?: string };
    /** SIP over TLS toward CCAI (embedded backend) */
    tls: SipTlsConfig;
  };
  /** the gateway's drachtio-server, for SIP_BACKEND=drachtio */
  drachtio: { host: string; port: number; secret: string; tls: boolean; caFile?: string };
  /**
   * the jambonz service (node-client-ws) on a private listener of its own: settings schema on OPTIONS, calls from
   * jambonz applications; `servicePath` '' leaves it off
   */
  jambonz: { servicePath: string; host: string; port: number; sources: string[] };
  rtp: {
    bindAddress: string;
    /** address put in the SDP c= line (NAT); defaults to bindAddress */
    advertisedAddress: string;
    portMin: number;
    portMax: number;
    /** hard cap on caller audio waiting for the 20 ms clock; the oldest is dropped (speech lost) beyond it */
    maxPlayoutMs: number;
    /** SDES-SRTP (RFC 4568, AES_CM_128_HMAC_SHA1_80): off, offered but not insisted on, or a call fails without it */
    srtp: 'off' | 'optional' | 'required';
  };
  escalation: { rules: EscalationRule[]; defaultRingGroup: string };
  /** admission, shutdown and the limits that end a call that went quiet or ran too long */
  limits: {
    /** concurrent calls; past it upgrades get 503 and /ready says 429 */
    maxCalls: number;
    /** SIGTERM: live calls get this long to finish before they are ended with stop{error} + BYE */
    shutdownGraceMs: number;
    /** no RTP from the bot for this long ends the call (media-timeout) */
    rtpTimeoutMs: number;
    /** no frame from Talkdesk for this long ends the call (talkdesk-timeout) */
    talkdeskTimeoutMs: number;
    /** a call longer than this is ended (max-duration) */
    maxCallMs: number;
  };
  /** agentassist=true streams (listen-only): each track its own call to the bot, or both tracks mixed into one */
  agentAssist: { calls: 'two' | 'one' };
  /** Prometheus metrics: GET /metrics on their own listener */
  metrics: { host: string; port: number };
  talkdesk: {
    /** how long an authenticated socket may wait for `start` */
    startTimeoutMs: number;
    /** how long to wait for the echo of our farewell mark before `stop` */
    markTimeoutMs: number;
    /** how long to wait for Talkdesk to close after our `stop` */
    closeWaitMs: number;
    /** how long Talkdesk may leave our audio unread before the call ends (talkdesk-not-reading) */
    notReadingMs: number;
    /** largest accepted WebSocket frame */
    maxFrameBytes: number;
  };
  logLevel: string;
}
