import type { NaptrRecord, SrvRecord } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { defaultSrvName, orderSrv, srvNamesFromNaptr } from '../../../../plugin/sip/embedded/srv-order.js';
import { mulberry32 } from '../../../support/sender-profiles.js';

const srv = (name: string, priority: number, weight: number, port = 5060): SrvRecord => ({ name, priority, weight, port });
const naptr = (order: number, preference: number, service: string, replacement: string, flags = 's'): NaptrRecord => ({
  order,
  preference,
  service,
  replacement,
  flags,
  regexp: '',
});
/** a random() that returns these values in turn */
const draws = (...values: number[]) => () => values.shift()!;

describe('orderSrv: SRV targets in the order RFC 2782 says to try them', () => {
  it('lowest priority first, whatever the weights', () => {
    const ordered = orderSrv([srv('c', 30, 100), srv('a', 10, 0), srv('b', 20, 50)], draws(0.9, 0.9, 0.9));
    expect(ordered.map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });

  it('within a priority, the draw picks the first record whose running weight sum reaches it: 0–10 → a, 11–40 → b', () => {
    const records = [srv('a', 10, 10), srv('b', 10, 30)];
    // total 40: a draw of floor(r × 41); 0.2 → 8 (a), 0.3 → 12 (b); the one left is last whatever the next draw
    expect(orderSrv(records, draws(0.2, 0.99)).map((r) => r.name)).toEqual(['a', 'b']);
    expect(orderSrv(records, draws(0.3, 0)).map((r) => r.name)).toEqual(['b', 'a']);
  });

  it('weight 0 goes first in the running sum: picked on a draw of 0 only, so rarely but not never', () => {
    const records = [srv('heavy', 10, 5), srv('zero', 10, 0)];
    expect(orderSrv(records, draws(0, 0)).map((r) => r.name)).toEqual(['zero', 'heavy']);
    expect(orderSrv(records, draws(0.5, 0)).map((r) => r.name)).toEqual(['heavy', 'zero']);
  });

  it('over many calls, each record of a priority comes first about in proportion to its weight (seeded random)', () => {
    const random = mulberry32(7);
    const records = [srv('one', 10, 10), srv('three', 10, 30), srv('backup', 20, 100)];
    const first = { one: 0, three: 0, backup: 0 };
    for (let i = 0; i < 10_000; i++) {
      const ordered = orderSrv(records, random);
      first[ordered[0]!.name as keyof typeof first]++;
      expect(ordered[2]!.name).toBe('backup');
    }
    expect(first.backup).toBe(0);
    // RFC 2782 draws a whole number in [0, 40], both ends included: 'three' takes 30 of its 41 values
    expect(first.three / 10_000).toBeCloseTo(30 / 41, 1);
    expect(first.one + first.three).toBe(10_000);
  });

  it('a lone "." target means the service is not offered: no targets', () => {
    expect(orderSrv([srv('.', 0, 0)])).toEqual([]);
    expect(orderSrv([])).toEqual([]);
  });
});

describe('srvNamesFromNaptr: the SRV names a domain gives our transport (RFC 3263 §4.1)', () => {
  const records = [
    naptr(50, 50, 'SIPS+D2T', '_sips._tcp.example.com'),
    naptr(90, 50, 'SIP+D2T', '_sip._tcp.example.com'),
    naptr(100, 50, 'SIP+D2U', '_sip._udp.backup.example.com'),
    naptr(100, 10, 'sip+d2u', '_sip._udp.example.com'),
    naptr(10, 10, 'SIP+D2U', 'sip.example.com', 'a'),
  ];

  it.each([
    ['UDP', ['_sip._udp.example.com', '_sip._udp.backup.example.com']],
    ['TCP', ['_sip._tcp.example.com']],
    ['TLS', ['_sips._tcp.example.com']],
  ] as const)('%s: its service only, flag "s" only, by order then preference', (protocol, names) => {
    expect(srvNamesFromNaptr(records, protocol)).toEqual(names);
  });

  it('none for our transport: none (the standard SRV name is asked instead)', () => {
    expect(srvNamesFromNaptr([naptr(10, 10, 'SIPS+D2T', '_sips._tcp.example.com')], 'UDP')).toEqual([]);
  });

  it.each([
    ['UDP', '_sip._udp.ccai.test'],
    ['TCP', '_sip._tcp.ccai.test'],
    ['TLS', '_sips._tcp.ccai.test'],
  ] as const)('the standard SRV name for %s: %s', (protocol, name) => {
    expect(defaultSrvName('ccai.test', protocol)).toBe(name);
  });
});
