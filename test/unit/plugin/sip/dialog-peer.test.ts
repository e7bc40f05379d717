import { describe, expect, it } from 'vitest';
import { ccaiSourcesOf, DialogPeer, FOREIGN_SOURCE_RESPONSE, mediaMoveAllowed, NO_CCAI_SOURCES } from '../../../../plugin/sip/dialog-peer.js';

describe('DialogPeer: who may act in a dialog', () => {
  const peer = new DialogPeer(NO_CCAI_SOURCES, ['192.0.2.10', undefined, '[2001:db8::1]', 'ccai.example.com']);

  it.each([
    ['192.0.2.10', true],
    ['::ffff:192.0.2.10', true], // an IPv4 peer on a dual-stack socket
    ['2001:db8::1', true],
    ['2001:DB8::1', true],
    ['[2001:db8::1]', true],
    ['192.0.2.11', false],
    ['ccai.example.com', false], // a name never equals a source address: adapters resolve names first
    ['', false],
    [undefined, false], // an adapter that could not tell the source
  ])('source %s → %s', (source, entitled) => {
    expect(peer.entitles(source)).toBe(entitled);
  });

  it('add() widens the peer by a resolved host and ignores names', () => {
    const p = new DialogPeer(NO_CCAI_SOURCES, ['192.0.2.10']);
    p.add('198.51.100.7');
    p.add('bot.example.com');
    p.add(undefined);
    expect(p.entitles('198.51.100.7')).toBe(true);
    expect(p.addresses).toEqual(['192.0.2.10', '198.51.100.7']);
  });

  it('CCAI_SOURCE_ADDRESSES entries (addresses and ranges) are entitled in every dialog', () => {
    const p = new DialogPeer(ccaiSourcesOf(['10.20.0.0/16', '203.0.113.5', 'fd00::/8']), ['192.0.2.10']);
    expect(p.entitles('10.20.3.4')).toBe(true);
    expect(p.entitles('::ffff:10.20.3.4')).toBe(true);
    expect(p.entitles('203.0.113.5')).toBe(true);
    expect(p.entitles('fd00::9')).toBe(true);
    expect(p.entitles('10.21.0.1')).toBe(false);
    expect(p.entitles('203.0.113.6')).toBe(false);
  });

  it('a stranger gets 403', () => {
    expect(FOREIGN_SOURCE_RESPONSE.status).toBe(403);
  });
});

describe('mediaMoveAllowed: where a re-INVITE may move the media', () => {
  const media = new DialogPeer(ccaiSourcesOf(['10.20.0.0/16']), ['192.0.2.50']);
  it.each([
    ['192.0.2.50', true], // an address the bot already gave
    ['10.20.9.9', true], // CCAI_SOURCE_ADDRESSES
    ['0.0.0.0', true], // hold (RFC 3264 §8.4): sends nothing anywhere
    ['198.51.100.66', false],
  ])('%s → %s', (address, allowed) => {
    expect(mediaMoveAllowed(media, address)).toBe(allowed);
  });
});
