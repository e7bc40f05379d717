/** Where a message goes to or came from: always a numeric IP (callers resolve names first). */
export interface Destination {
  readonly host: string;
  readonly port: number;
}

/**
 * The layer above a transport (the SipStack). Stream transports also ask it whether a connection is still needed,
 * and tell it when one is lost with messages possibly in flight.
 */
export interface TransportUser {
  /** One framed SIP message as it arrived, and who sent it (needed for responses, RFC 3261 §18.2.2 / RFC 3581). */
  receive(data: Buffer, source: Destination): void;
  /**
   * A connection to `peer` failed or was closed by the peer: every transaction waiting on it fails now with `error`
   * (RFC 3261 §17.1.4, §18.4) instead of running into Timer B/F, since nothing is retransmitted on it.
   */
  connectionLost(peer: Destination, error: Error): void;
  /** whether a transaction or dialog still sends to `peer`: an idle connection to it stays open while it does */
  uses(peer: Destination): boolean;
}

/**
 * What the transaction layer needs from a transport (RFC 3261 §18): UDP (`transport-udp.ts`), or TCP and TLS, which
 * frame a byte stream by Content-Length (§18.3) and deliver each message the same way (`transport-stream.ts`).
 */
export interface SipTransport {
  /** the token in Via and in `;transport=` (upper case) */
  readonly protocol: 'UDP' | 'TCP' | 'TLS';
  /**
   * Reliable transports deliver or fail: transactions then skip the retransmission timers A, E and G and zero the
   * absorb timers D, I, J and K (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
   */
  readonly reliable: boolean;
  /** address family used for name lookups */
  readonly family: 4 | 6;
  /** the port in our Via sent-by and Contact; valid after start() */
  readonly localPort: number;
  start(user: TransportUser): Promise<void>;
  /** Resolves once handed to the OS; rejects on a local send error or a connection that could not be opened. */
  send(data: string, dest: Destination): Promise<void>;
  close(): Promise<void>;
}
