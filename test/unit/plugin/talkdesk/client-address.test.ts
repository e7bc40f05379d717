import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parseIpRange } from '../../../../config/ip-range.js';
import { clientAddressOf } from '../../../../plugin/talkdesk/client-address.js';

function request(peer: string, forwardedFor?: string): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage;
}

describe('parseIpRange', () => {
  it.each([
    ['10.0.0.5', { ok: true, address: '10.0.0.5', family: 'ipv4' }],
    ['10.0.0.0/8', { ok: true, address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['fd00::/8', { ok: true, address: 'fd00::', prefix: 8, family: 'ipv6' }],
    ['::1', { ok: true, address: '::1', family: 'ipv6' }],
  ])('%s is a range', (text, range) => expect(parseIpRange(text)).toEqual(range));

  it.each(['proxy.example.com', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/0x8', ''])('%j is not', (text) => {
    expect(parseIpRange(text)).toEqual({ ok: false });
  });
});

describe('clientAddressOf', () => {
  it('trusting no one, the peer is the client whatever X-Forwarded-For says', () => {
    expect(clientAddressOf([])(request('198.51.100.7', '203.0.113.9'))).toBe('198.51.100.7');
  });

  it('a request from a peer that is not a trusted proxy keeps the peer, forwarded header or not', () => {
    expect(clientAddressOf(['10.0.0.5'])(request('198.51.100.7', '203.0.113.9'))).toBe('198.51.100.7');
  });

  it('from a trusted proxy: the address it appended, not what the client wrote to its left', () => {
    const of = clientAddressOf(['10.0.0.5']);
    expect(of(request('10.0.0.5', '203.0.113.9'))).toBe('203.0.113.9');
    expect(of(request('10.0.0.5', '192.0.2.1, 203.0.113.9'))).toBe('203.0.113.9');
  });

  it('walks past every trusted hop, by address or range, to the first untrusted one', () => {
    const of = clientAddressOf(['10.0.0.0/8', '172.16.0.1']);
    expect(of(request('10.1.2.3', '192.0.2.1, 203.0.113.9, 172.16.0.1, 10.9.9.9'))).toBe('203.0.113.9');
  });

  it('when every hop is trusted, the leftmost one; without the header, the proxy itself', () => {
    const of = clientAddressOf(['10.0.0.0/8']);
    expect(of(request('10.0.0.1', '10.0.0.2, 10.0.0.3'))).toBe('10.0.0.2');
    expect(of(request('10.0.0.1'))).toBe('10.0.0.1');
  });

  it('an entry that is not an address ends the walk at the last hop it could trust', () => {
    const of = clientAddressOf(['10.0.0.5']);
    expect(of(request('10.0.0.5', 'unknown'))).toBe('10.0.0.5');
    expect(of(request('10.0.0.5', '203.0.113.9, 10.0.0.5, _hidden'))).toBe('10.0.0.5');
  });

  it('an IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) matches an IPv4 range, and IPv6 proxies work', () => {
    expect(clientAddressOf(['127.0.0.1'])(request('::ffff:127.0.0.1', '203.0.113.9'))).toBe('203.0.113.9');
    expect(clientAddressOf(['fd00::/8'])(request('fd00::1', '2001:db8::7'))).toBe('2001:db8::7');
  });
});
