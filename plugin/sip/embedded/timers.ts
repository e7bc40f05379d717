/**
 * RFC 3261 timer values (§17, Table 4 in Appendix A), in milliseconds, with the values for UDP. Reliable transports
 * zero the "absorb retransmissions" waits (D, I, J, K) where the transaction applies them, not here.
 * L and M are RFC 6026's additions for the Accepted state of INVITE transactions.
 */
export interface SipTimers {
  /** RTT estimate: first retransmission interval */
  T1: number;
  /** cap on non-INVITE request and INVITE response retransmission intervals */
  T2: number;
  /** longest time a message stays in the network */
  T4: number;
  /** INVITE client transaction timeout (64*T1) */
  B: number;
  /** wait in Completed for retransmitted INVITE final responses (≥ 32 s on UDP) */
  D: number;
  /** non-INVITE client transaction timeout (64*T1) */
  F: number;
  /** INVITE server transaction: give up waiting for the ACK (64*T1) */
  H: number;
  /** INVITE server transaction: absorb ACK retransmissions (T4) */
  I: number;
  /** non-INVITE server transaction: absorb request retransmissions (64*T1) */
  J: number;
  /** non-INVITE client transaction: absorb response retransmissions (T4) */
  K: number;
  /** INVITE server transaction in Accepted: absorb INVITE retransmissions after a 2xx (64*T1, RFC 6026 §8.7) */
  L: number;
  /** INVITE client transaction in Accepted: pass 2xx retransmissions to the TU (64*T1, RFC 6026 §8.4) */
  M: number;
}

/** Fills in RFC defaults, deriving the 64*T1 and T4 timers from an overridden T1/T4. Throws on a bad override. */
export function resolveSipTimers(overrides: Partial<SipTimers> = {}): SipTimers {
  const T1 = overrides.T1 ?? 500;
  const T4 = overrides.T4 ?? 5000;
  const timers: SipTimers = {
    T1,
    T2: 4000,
    T4,
    B: 64 * T1,
    D: 32_000,
    F: 64 * T1,
    H: 64 * T1,
    I: T4,
    J: 64 * T1,
    K: T4,
    L: 64 * T1,
    M: 64 * T1,
    ...overrides,
  };
  for (const [name, ms] of Object.entries(timers)) {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`SIP timer ${name} must be a non-negative number of ms (got ${ms})`);
  }
  return timers;
}

/** Named one-shot timers owned by one transaction; a name holds at most one pending timer. */
export class TimerSet<Name extends string> {
  private readonly pending = new Map<Name, NodeJS.Timeout>();

  start(name: Name, ms: number, fire: () => void): void {
    this.clear(name);
    this.pending.set(
      name,
      setTimeout(() => {
        this.pending.delete(name);
        fire();
      }, ms),
    );
  }

  clear(name: Name): void {
    clearTimeout(this.pending.get(name));
    this.pending.delete(name);
  }

  /** Clears every timer except the named ones (the timers that outlive a state change). */
  clearExcept(keep: readonly Name[]): void {
    for (const name of [...this.pending.keys()]) {
      if (!keep.includes(name)) this.clear(name);
    }
  }
}
