import { isIP } from 'node:net';
import { ipRangeMatcher, unmapped } from '../../config/ip-range.js';
import { HOLD_ADDRESS } from '../../media/sdp.js';

/**
 * Who may act in one SIP dialog, for both adapters. A dialog is found by Call-ID and tags alone (RFC 3261 §12.2.2),
 * and on UDP or TCP anyone on the path can read those: without this check a BYE, REFER or re-INVITE from any address
 * could end, escalate or redirect the call, and an OPTIONS with a huge CSeq could make the bot's own BYE "out of
 * order". So every in-dialog request and ACK is first asked where it came from, before the CSeq moves.
 *
 * The peer's hosts are the ones the dialog itself named: where the INVITE went, where the 2xx came from, and the
 * hosts of the 2xx's Contact and Record-Route (and of a later target refresh from an entitled source), plus the
 * operator's CCAI_SOURCE_ADDRESSES for a CCAI that speaks from other nodes. Only the host is compared, never the port:
 * a bot's requests on TCP/TLS come from ephemeral ports, and on UDP RFC 3261 §18.2.1 lets it send from any port of its
 * own. On TCP/TLS the source is the connection's peer, so only connections to or from these hosts count.
 *
 * Pure: no I/O. Host names must be resolved by the adapter first (a name added here is ignored, it could never equal
 * a source address).
 */

/** CCAI_SOURCE_ADDRESSES, compiled once per process: whether an address is one of CCAI's declared sources */
export type CcaiSources = (address: string) => boolean;

export function ccaiSourcesOf(ranges: readonly string[]): CcaiSources {
  let sources = compiled.get(ranges);
  if (sources === undefined) compiled.set(ranges, (sources = ipRangeMatcher(ranges)));
  return sources;
}

/** each call's leg asks for the same config array: its BlockList is built once per process, not once per call */
const compiled = new WeakMap<readonly string[], CcaiSources>();

/** nobody beyond the dialog's own hosts (no CCAI_SOURCE_ADDRESSES) */
export const NO_CCAI_SOURCES: CcaiSources = () => false;

/** what an adapter does with an in-dialog request from a source the dialog does not know (RFC 3261 §21.4.4) */
export const FOREIGN_SOURCE_RESPONSE = { status: 403, reason: 'Forbidden (not this dialog\'s peer)' } as const;

export class DialogPeer {
  private readonly hosts = new Set<string>();

  /** `hosts`: numeric addresses; undefined entries (a 2xx source not known) and names are skipped */
  constructor(
    private readonly ccaiSources: CcaiSources,
    hosts: Iterable<string | undefined> = [],
  ) {
    for (const host of hosts) this.add(host);
  }

  /** Another host of the peer (a resolved Contact or Record-Route host, a target refresh). Names are ignored. */
  add(host: string | undefined): void {
    if (host === undefined) return;
    const plain = unmapped(host.replace(/^\[(.*)\]$/, '$1'));
    if (isIP(plain) !== 0) this.hosts.add(plain.toLowerCase());
  }

  /**
   * Whether a request (or ACK) from `sourceHost` may act in this dialog: true for one of the peer's hosts or a
   * CCAI_SOURCE_ADDRESSES entry. An absent source (an adapter that could not tell) is not entitled.
   */
  entitles(sourceHost: string | undefined): boolean {
    if (sourceHost === undefined || sourceHost === '') return false;
    const plain = unmapped(sourceHost.replace(/^\[(.*)\]$/, '$1')).toLowerCase();
    return this.hosts.has(plain) || this.ccaiSources(plain);
  }

  /** the peer's own hosts, for logs */
  get addresses(): readonly string[] {
    return [...this.hosts];
  }
}

/**
 * Where a re-INVITE or UPDATE that passed the peer check may move the bot's media (plugin/call/bot-leg.ts): to any port,
 * but only to an address the bot already gave in an SDP of this call (its 2xx, an early 183) or a
 * CCAI_SOURCE_ADDRESSES entry; `0.0.0.0` (RFC 3264 §8.4 hold) sends nothing anywhere and is always allowed. Another
 * address would send the caller's audio to, and take the bot's audio from, someone the bot never named.
 */
export function mediaMoveAllowed(media: DialogPeer, address: string): boolean {
  return address === HOLD_ADDRESS || media.entitles(address);
}
