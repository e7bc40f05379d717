/** Where a message goes to or came from: always a numeric IP (callers resolve names first). */
export interface Destination {
  readonly host: string;
  readonly port: number;
}

/** One framed SIP message as it arrived, and who sent it (needed for responses, RFC 3261 §18.2.2 / RFC 3581). */
export type MessageListener = (data: Buffer, source: Destination) => void;

/**
 * What the transaction layer needs from a transport (RFC 3261 §18). UDP is the only implementation today; a TCP or
 * TLS one would frame the stream by Content-Length (§18.3), deliver each message the same way and set `reliable`.
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
  /** the bound port; valid after start() */
  readonly localPort: number;
  start(onMessage: MessageListener): Promise<void>;
  /** Resolves once handed to the OS; rejects on a local send error. */
  send(data: string, dest: Destination): Promise<void>;
  close(): Promise<void>;
}
