import type { NaptrRecord, SrvRecord } from 'node:dns';
import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SipFailure } from '../errors.js';
import { DnsCache, type Expiring } from './dns-cache.js';
import { defaultPort, uriForTransport } from './destination.js';
import { defaultSrvName, orderSrv, srvNamesFromNaptr } from './srv-order.js';
import type { Destination, SipTransport } from './transport.js';

/** One place to send the INVITE: an address and port, and the DNS name it came from (for the call's logs). */
export interface Target extends Destination {
  readonly name: string;
}

/** The lookups RFC 3263 needs, each with how long its answer may be kept. Empty arrays for "no such record". */
export interface DnsQueries {
  naptr(name: string): Promise<Expiring<NaptrRecord[]>>;
  srv(name: string): Promise<Expiring<SrvRecord[]>>;
  addresses(name: string, family: 4 | 6): Promise<Expiring<string[]>>;
}

/**
 * node:dns gives a TTL for A/AAAA answers only ({ttl: true}); NAPTR and SRV answers, and "no such record" answers
 * (RFC 2308 would take the SOA's), are kept this long instead: short enough that a changed record is seen within a
 * minute, long enough that a busy gateway asks once per half-minute, not once per call.
 */
const UNKNOWN_TTL_MS = 30_000;
/** an A/AAAA TTL beyond this is cut to it: a moved CCAI is found again within the hour whatever its zone says */
const MAX_TTL_MS = 3_600_000;
/** names cached at most: CCAI_SIP_HOST, its NAPTR and SRV names and their targets are a handful */
const MAX_CACHE_ENTRIES = 256;
/** the most targets tried, whatever DNS publishes: each costs up to CCAI_TARGET_TIMEOUT_MS of the INVITE's time */
const MAX_TARGETS = 8;
/** the most SRV names a NAPTR answer may have us ask, one query each */
const MAX_SRV_NAMES = 4;
/** c-ares per query: one retry, 2 s each, so an unreachable DNS server fails a call within INVITE_TIMEOUT_MS */
const QUERY_TIMEOUT_MS = 2_000;
const QUERY_TRIES = 2;

export interface TargetResolverOptions {
  /** CCAI_DNS_SERVERS (`ip[:port]` entries); empty: the system's resolvers, and /etc/hosts for addresses */
  servers?: readonly string[];
  /** for tests */
  queries?: DnsQueries;
  now?: () => number;
  random?: () => number;
}

/**
 * RFC 3263 §4 for the INVITE's request-URI, with one transport per backend: the targets to try, in order.
 *
 * - An IP address: itself, on the URI's port or the default one (§4.2).
 * - A name with a port: its A (or AAAA, on an IPv6 transport) records on that port (§4.2: no SRV).
 * - A name without a port: NAPTR records of our transport's service give the SRV names, best first; without one, the
 *   standard `_sip._udp` / `_sip._tcp` / `_sips._tcp` name (§4.1). SRV targets by priority, weighted at random within
 *   one (RFC 2782), each target's addresses on its port; no SRV record: the name's own addresses on the default port.
 *
 * What §4.1 does that this skips: choosing the transport from NAPTR (the URI names ours, CCAI_SIP_TRANSPORT, and the
 * backend runs that one only), and NAPTR rules other than flag "s". A failed NAPTR query counts as "none" (some
 * resolvers refuse the type); a failed SRV or address query fails the lookup, since the server is not answering.
 */
export class TargetResolver {
  private readonly cache: DnsCache;
  private readonly queries: DnsQueries;
  private readonly random: () => number;

  constructor(opts: TargetResolverOptions = {}) {
    this.cache = new DnsCache(MAX_CACHE_ENTRIES, opts.now);
    this.queries = opts.queries ?? nodeQueries(opts.servers ?? []);
    this.random = opts.random ?? Math.random;
  }

  /** Rejects with a `transport` SipFailure: a URI for another transport, a failed lookup, or no target at all. */
  async targets(uri: string, transport: Pick<SipTransport, 'protocol' | 'family'>): Promise<Target[]> {
    const parsed = uriForTransport(uri, transport);
    const host = parsed.host.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) return [{ host, port: parsed.port ?? defaultPort(transport.protocol), name: host }];
    const found =
      parsed.port !== undefined
        ? await this.at(host, parsed.port, transport.family)
        : await this.bySrv(host, transport);
    if (found.length === 0) throw new SipFailure('transport', `DNS has no address for ${host}`);
    return found.slice(0, MAX_TARGETS);
  }

  private async bySrv(host: string, transport: Pick<SipTransport, 'protocol' | 'family'>): Promise<Target[]> {
    const naptr = await this.cached('NAPTR', host, () => this.queries.naptr(host)).catch((): NaptrRecord[] => []);
    const names = srvNamesFromNaptr(naptr, transport.protocol).slice(0, MAX_SRV_NAMES);
    for (const name of names.length > 0 ? names : [defaultSrvName(host, transport.protocol)]) {
      const records = await this.cached('SRV', name, () => this.queries.srv(name));
      if (records.length === 0) continue;
      const ordered = orderSrv(records, this.random).slice(0, MAX_TARGETS);
      // every target looked up at once: the dead first one must not delay the second; one without an address is skipped
      const addresses = await Promise.allSettled(ordered.map((r) => this.at(r.name, r.port, transport.family)));
      return addresses.flatMap((a) => (a.status === 'fulfilled' ? a.value : []));
    }
    return this.at(host, defaultPort(transport.protocol), transport.family);
  }

  private async at(name: string, port: number, family: 4 | 6): Promise<Target[]> {
    const addresses = await this.cached(family === 4 ? 'A' : 'AAAA', name, () => this.queries.addresses(name, family));
    return addresses.map((host) => ({ host, port, name }));
  }

  private cached<T>(type: string, name: string, query: () => Promise<Expiring<T>>): Promise<T> {
    return this.cache.get(`${type} ${name.toLowerCase()}`, () =>
      query().catch((err: unknown) => {
        throw new SipFailure('transport', `DNS ${type} lookup of ${name} failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }),
    );
  }
}

/** c-ares codes for "the name or record does not exist": an answer, kept like one */
const NOT_FOUND = new Set(['ENODATA', 'ENOTFOUND']);

/** node:dns, on the servers given or the system's; with the system's, a name DNS does not know may be in /etc/hosts */
function nodeQueries(servers: readonly string[]): DnsQueries {
  const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
  if (servers.length > 0) resolver.setServers(servers);
  const orNone = async <T>(query: Promise<T[]>): Promise<Expiring<T[]>> => {
    try {
      return { value: await query, ttlMs: UNKNOWN_TTL_MS };
    } catch (err) {
      if (NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) return { value: [], ttlMs: UNKNOWN_TTL_MS };
      throw err;
    }
  };
  return {
    naptr: (name) => orNone(resolver.resolveNaptr(name)),
    srv: (name) => orNone(resolver.resolveSrv(name)),
    async addresses(name, family) {
      const query = family === 4 ? resolver.resolve4(name, { ttl: true }) : resolver.resolve6(name, { ttl: true });
      const system = servers.length === 0;
      // with the system's configuration, DNS failing (or not knowing the name) still leaves /etc/hosts, as dns.lookup did
      const { value } = await orNone(query).catch((err: unknown) => {
        if (system) return { value: [] };
        throw err;
      });
      if (value.length > 0) {
        return { value: value.map((a) => a.address), ttlMs: Math.min(MAX_TTL_MS, 1000 * Math.min(...value.map((a) => a.ttl))) };
      }
      if (!system) return { value: [], ttlMs: UNKNOWN_TTL_MS };
      const hosts = await orNone(lookup(name, { family, all: true }));
      return { value: hosts.value.map((a) => a.address), ttlMs: UNKNOWN_TTL_MS };
    },
  };
}
