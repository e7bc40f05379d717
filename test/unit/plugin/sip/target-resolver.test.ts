import type { NaptrRecord, SrvRecord } from 'node:dns';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startDnsServer } from '../../../support/dns-server.js';
import { SipFailure } from '../../../../plugin/sip/errors.js';
import { TargetResolver, type DnsQueries } from '../../../../plugin/sip/embedded/target-resolver.js';

const UDP = { protocol: 'UDP', family: 4 } as const;
const TCP = { protocol: 'TCP', family: 4 } as const;
const TLS = { protocol: 'TLS', family: 4 } as const;

/** A zone for the injected lookups; every question is recorded. Names absent from a table have no such record. */
function fakeDns(zone: { naptr?: Record<string, NaptrRecord[]>; srv?: Record<string, SrvRecord[]>; a?: Record<string, { addresses: string[]; ttlMs: number }> }) {
  const asked: string[] = [];
  const queries: DnsQueries = {
    async naptr(name) {
      asked.push(`NAPTR ${name}`);
      return { value: zone.naptr?.[name] ?? [], ttlMs: 30_000 };
    },
    async srv(name) {
      asked.push(`SRV ${name}`);
      return { value: zone.srv?.[name] ?? [], ttlMs: 30_000 };
    },
    async addresses(name) {
      asked.push(`A ${name}`);
      const a = zone.a?.[name];
      return { value: a?.addresses ?? [], ttlMs: a?.ttlMs ?? 30_000 };
    },
  };
  return { queries, asked };
}

const srv = (name: string, priority: number, port: number, weight = 0): SrvRecord => ({ name, priority, weight, port });
const naptr = (service: string, replacement: string, order = 10): NaptrRecord => ({ order, preference: 10, service, replacement, flags: 's', regexp: '' });

describe('TargetResolver: where the INVITE\'s request-URI leads (RFC 3263 §4)', () => {
  it('an IP address: itself, on the URI\'s port or the default (5060; 5061 for TLS), nothing asked', async () => {
    const dns = fakeDns({});
    const resolver = new TargetResolver({ queries: dns.queries });
    expect(await resolver.targets('sip:u@10.0.0.5:5080;transport=udp', UDP)).toEqual([{ host: '10.0.0.5', port: 5080, name: '10.0.0.5' }]);
    expect(await resolver.targets('sip:u@10.0.0.5;transport=udp', UDP)).toEqual([{ host: '10.0.0.5', port: 5060, name: '10.0.0.5' }]);
    expect(await resolver.targets('sips:u@10.0.0.5;transport=tls', TLS)).toEqual([{ host: '10.0.0.5', port: 5061, name: '10.0.0.5' }]);
    expect(dns.asked).toEqual([]);
  });

  it('a name with a port: its addresses on that port, no NAPTR or SRV asked (§4.2)', async () => {
    const dns = fakeDns({ a: { 'ccai.test': { addresses: ['10.0.0.1', '10.0.0.2'], ttlMs: 60_000 } } });
    const targets = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test:5070;transport=udp', UDP);
    expect(targets).toEqual([
      { host: '10.0.0.1', port: 5070, name: 'ccai.test' },
      { host: '10.0.0.2', port: 5070, name: 'ccai.test' },
    ]);
    expect(dns.asked).toEqual(['A ccai.test']);
  });

  it.each([
    [UDP, '_sip._udp.ccai.test'],
    [TCP, '_sip._tcp.ccai.test'],
    [TLS, '_sips._tcp.ccai.test'],
  ] as const)('no NAPTR: the standard SRV name of the transport (%j → %s), its targets by priority', async (transport, name) => {
    const dns = fakeDns({
      srv: { [name]: [srv('b.ccai.test', 20, 5090), srv('a.ccai.test', 10, 5080)] },
      a: { 'a.ccai.test': { addresses: ['10.0.0.1'], ttlMs: 60_000 }, 'b.ccai.test': { addresses: ['10.0.0.2'], ttlMs: 60_000 } },
    });
    const scheme = transport === TLS ? 'sips' : 'sip';
    const targets = await new TargetResolver({ queries: dns.queries }).targets(`${scheme}:u@ccai.test;transport=${transport.protocol.toLowerCase()}`, transport);
    expect(targets).toEqual([
      { host: '10.0.0.1', port: 5080, name: 'a.ccai.test' },
      { host: '10.0.0.2', port: 5090, name: 'b.ccai.test' },
    ]);
    expect(dns.asked.slice(0, 2)).toEqual(['NAPTR ccai.test', `SRV ${name}`]);
  });

  it('NAPTR of our service names the SRV name to ask; another transport\'s record is passed over', async () => {
    const dns = fakeDns({
      naptr: { 'ccai.test': [naptr('SIPS+D2T', '_sips._tcp.edge.ccai.test', 5), naptr('SIP+D2U', '_sip._udp.edge.ccai.test', 10)] },
      srv: { '_sip._udp.edge.ccai.test': [srv('sbc.ccai.test', 10, 5062)] },
      a: { 'sbc.ccai.test': { addresses: ['10.0.0.9'], ttlMs: 60_000 } },
    });
    const targets = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test;transport=udp', UDP);
    expect(targets).toEqual([{ host: '10.0.0.9', port: 5062, name: 'sbc.ccai.test' }]);
    expect(dns.asked).toEqual(['NAPTR ccai.test', 'SRV _sip._udp.edge.ccai.test', 'A sbc.ccai.test']);
  });

  it('no SRV record: the name\'s own addresses on the default port', async () => {
    const dns = fakeDns({ a: { 'ccai.test': { addresses: ['10.0.0.1'], ttlMs: 60_000 } } });
    const targets = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test;transport=tcp', TCP);
    expect(targets).toEqual([{ host: '10.0.0.1', port: 5060, name: 'ccai.test' }]);
    expect(dns.asked).toEqual(['NAPTR ccai.test', 'SRV _sip._tcp.ccai.test', 'A ccai.test']);
  });

  it('an SRV target without an address is skipped; a name with nothing at all fails as `transport`', async () => {
    const dns = fakeDns({
      srv: { '_sip._udp.ccai.test': [srv('gone.ccai.test', 10, 5080), srv('b.ccai.test', 20, 5090)] },
      a: { 'b.ccai.test': { addresses: ['10.0.0.2'], ttlMs: 60_000 } },
    });
    const resolver = new TargetResolver({ queries: dns.queries });
    expect(await resolver.targets('sip:u@ccai.test;transport=udp', UDP)).toEqual([{ host: '10.0.0.2', port: 5090, name: 'b.ccai.test' }]);
    const failure = await resolver.targets('sip:u@nothing.test;transport=udp', UDP).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SipFailure);
    expect(failure).toMatchObject({ kind: 'transport', message: 'DNS has no address for nothing.test' });
  });

  it('at most 8 targets, however many DNS publishes', async () => {
    const records = Array.from({ length: 20 }, (_, i) => srv(`t${i}.ccai.test`, i, 5000 + i));
    const a = Object.fromEntries(records.map((r) => [r.name, { addresses: ['10.0.0.1', '10.0.0.2'], ttlMs: 60_000 }]));
    const dns = fakeDns({ srv: { '_sip._udp.ccai.test': records }, a });
    const targets = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test;transport=udp', UDP);
    expect(targets).toHaveLength(8);
    expect(dns.asked.filter((q) => q.startsWith('A '))).toHaveLength(8);
  });

  it('at most 4 SRV names from NAPTR are asked, then the name\'s own addresses', async () => {
    const naptrs = Array.from({ length: 10 }, (_, i) => naptr('SIP+D2U', `_sip._udp.n${i}.ccai.test`, i));
    const dns = fakeDns({ naptr: { 'ccai.test': naptrs }, a: { 'ccai.test': { addresses: ['10.0.0.1'], ttlMs: 60_000 } } });
    const targets = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test;transport=udp', UDP);
    expect(targets).toEqual([{ host: '10.0.0.1', port: 5060, name: 'ccai.test' }]);
    expect(dns.asked.filter((q) => q.startsWith('SRV '))).toEqual([0, 1, 2, 3].map((i) => `SRV _sip._udp.n${i}.ccai.test`));
  });

  it('a failed NAPTR query counts as none; a failed SRV query fails the lookup, naming it', async () => {
    const dns = fakeDns({});
    dns.queries.naptr = () => Promise.reject(Object.assign(new Error('refused'), { code: 'ENOTIMP' }));
    dns.queries.srv = () => Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' }));
    const failure = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test;transport=udp', UDP).catch((e: unknown) => e);
    expect(failure).toMatchObject({ kind: 'transport', message: 'DNS SRV lookup of _sip._udp.ccai.test failed: ETIMEOUT' });
  });

  it('a URI for another transport than the backend\'s fails before any lookup', async () => {
    const dns = fakeDns({});
    const failure = await new TargetResolver({ queries: dns.queries }).targets('sip:u@ccai.test;transport=tcp', UDP).catch((e: unknown) => e);
    expect(failure).toMatchObject({ kind: 'transport', message: expect.stringContaining('needs transport TCP') });
    expect(dns.asked).toEqual([]);
  });

  it('answers are cached by their TTL (injected clock): A by its own, NAPTR and SRV for 30 s', async () => {
    let now = 0;
    const dns = fakeDns({
      srv: { '_sip._udp.ccai.test': [srv('a.ccai.test', 10, 5080)] },
      a: { 'a.ccai.test': { addresses: ['10.0.0.1'], ttlMs: 10_000 } },
    });
    const resolver = new TargetResolver({ queries: dns.queries, now: () => now });
    const lookUp = () => resolver.targets('sip:u@ccai.test;transport=udp', UDP);
    await lookUp();
    now = 9_999;
    await lookUp();
    expect(dns.asked).toEqual(['NAPTR ccai.test', 'SRV _sip._udp.ccai.test', 'A a.ccai.test']);
    now = 10_000;
    await lookUp();
    expect(dns.asked.slice(3)).toEqual(['A a.ccai.test']);
    now = 29_999;
    await lookUp();
    expect(dns.asked.slice(4)).toEqual(['A a.ccai.test']);
    now = 30_000;
    await lookUp();
    expect(dns.asked.slice(5)).toEqual(['NAPTR ccai.test', 'SRV _sip._udp.ccai.test']);
  });
});

describe('TargetResolver on node:dns, asking the servers given (CCAI_DNS_SERVERS)', () => {
  it('reads NAPTR, SRV and A off the wire, keeps an A answer for its TTL and a missing record as "none"', async () => {
    const dns = await startDnsServer({
      'ccai.test': [{ type: 'NAPTR', ttl: 300, data: { order: 10, preference: 10, flags: 's', services: 'SIP+D2U', regexp: '', replacement: '_sip._udp.edge.ccai.test' } }],
      '_sip._udp.edge.ccai.test': [
        { type: 'SRV', ttl: 300, data: { priority: 20, weight: 0, port: 5090, target: 'b.ccai.test' } },
        { type: 'SRV', ttl: 300, data: { priority: 10, weight: 0, port: 5080, target: 'a.ccai.test' } },
      ],
      'a.ccai.test': [{ type: 'A', ttl: 5, data: '127.0.0.11' }],
      'b.ccai.test': [{ type: 'A', ttl: 300, data: '127.0.0.12' }],
      'plain.test': [{ type: 'A', ttl: 300, data: '127.0.0.13' }],
    });
    onTestFinished(() => dns.close());
    let now = 0;
    const resolver = new TargetResolver({ servers: [dns.address], now: () => now });

    const targets = await resolver.targets('sip:u@ccai.test;transport=udp', UDP);
    expect(targets).toEqual([
      { host: '127.0.0.11', port: 5080, name: 'a.ccai.test' },
      { host: '127.0.0.12', port: 5090, name: 'b.ccai.test' },
    ]);
    now = 5_000;
    await resolver.targets('sip:u@ccai.test;transport=udp', UDP);
    expect(dns.questions.filter((q) => q === 'A a.ccai.test')).toHaveLength(2);
    expect(dns.questions.filter((q) => q === 'A b.ccai.test')).toHaveLength(1);

    // plain.test has no NAPTR and no SRV (NXDOMAIN for the SRV name): its A record on 5060
    expect(await resolver.targets('sip:u@plain.test;transport=udp', UDP)).toEqual([{ host: '127.0.0.13', port: 5060, name: 'plain.test' }]);
    expect(dns.questions.slice(-3)).toEqual(['NAPTR plain.test', 'SRV _sip._udp.plain.test', 'A plain.test']);
  });
});
