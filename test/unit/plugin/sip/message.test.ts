import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, hasSdp, parseSipMessage } from '../../../../plugin/sip/embedded/message.js';
import { parseNameAddr, parseVia, tagOf } from '../../../../plugin/sip/embedded/header-fields.js';
import { splitHeaderList } from '../../../../plugin/sip/header-list.js';
import { parseSipUri, uriWithoutParams } from '../../../../plugin/sip/embedded/uri.js';

const crlf = (...lines: string[]): string => lines.join('\r\n');

const BODY = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n';
const INVITE = crlf(
  'INVITE sip:talkdesk@127.0.0.1:5060 SIP/2.0',
  'Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;rport',
  'Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKdef',
  'From: "Bot" <sip:bot@10.0.0.1>;tag=ft',
  'To: <sip:talkdesk@127.0.0.1>',
  'Call-ID: call-1',
  'CSeq: 7 INVITE',
  'X-Escalate: true',
  'Content-Type: application/sdp',
  `Content-Length: ${Buffer.byteLength(BODY)}`,
  '',
  BODY,
);

const without = (header: string): string => INVITE.split('\r\n').filter((l) => !l.startsWith(`${header}:`)).join('\r\n');

describe('parseSipMessage', () => {
  it('reads a request: top Via, branch, CSeq, tags, body', () => {
    const r = parseSipMessage(Buffer.from(INVITE));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const m = r.message;
    expect(m.sip.method).toBe('INVITE');
    expect(m.callId).toBe('call-1');
    expect(m.cseq).toEqual({ seq: 7, method: 'INVITE' });
    expect(m.via).toMatchObject({ transport: 'UDP', host: '10.0.0.1', port: 5070 });
    expect(m.branch).toBe('z9hG4bKabc');
    expect('rport' in m.via.params).toBe(true);
    expect(m.fromTag).toBe('ft');
    expect(m.toTag).toBeUndefined();
    expect(m.sip.body).toBe(BODY);
    expect(hasSdp(m.sip)).toBe(true);
    expect(m.sip.get('x-escalate')).toBe('true');
  });

  it('reads a response with compact header names', () => {
    const r = parseSipMessage(
      crlf('SIP/2.0 180 Ringing', 'v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx', 'f: <sip:a@b>;tag=1', 't: <sip:c@d>;tag=2', 'i: cid', 'CSeq: 1 INVITE', 'l: 0', '', ''),
    );
    expect(r.ok && r.message.sip.status === 180 && r.message.toTag === '2' && r.message.callId === 'cid').toBe(true);
  });

  it.each([
    ['empty input', ''],
    ['garbage', 'hello world'],
    ['binary', '\u0000\u0001\u0002\u00ff'],
    ['a header line without colon', INVITE.replace('X-Escalate: true', 'X-Escalate true')],
    ['LF-only line endings', INVITE.replaceAll('\r\n', '\n')],
    ['missing Via', without('Via')],
    ['missing CSeq', without('CSeq')],
    ['missing Call-ID', without('Call-ID')],
    ['missing From', without('From')],
    ['missing To', without('To')],
    ['a Via without branch', INVITE.replace(';branch=z9hG4bKabc', '')],
    ['an unreadable Via', INVITE.replace('SIP/2.0/UDP 10.0.0.1:5070', 'nonsense')],
    ['an unreadable CSeq', INVITE.replace('CSeq: 7 INVITE', 'CSeq: seven')],
    ['a CSeq method unlike the request method', INVITE.replace('CSeq: 7 INVITE', 'CSeq: 7 BYE')],
    ['a body shorter than Content-Length', INVITE.replace(/Content-Length: \d+/, 'Content-Length: 999')],
    ['oversized', INVITE + 'a'.repeat(MAX_MESSAGE_BYTES)],
  ])('returns a reason, never throws, for %s', (_name, raw) => {
    const r = parseSipMessage(Buffer.from(raw, 'latin1'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBeTruthy();
  });

  it('reports oversize by its byte count', () => {
    const r = parseSipMessage('x'.repeat(MAX_MESSAGE_BYTES + 1));
    expect(r).toEqual({ ok: false, reason: `oversized (${MAX_MESSAGE_BYTES + 1} bytes > ${MAX_MESSAGE_BYTES})` });
  });
});

describe('header fields', () => {
  it('splits Record-Route on commas outside <> and quotes', () => {
    expect(splitHeaderList('<sip:p1;lr>, "a, b" <sip:p2;lr;x=1,2>,<sip:p3>')).toEqual([
      '<sip:p1;lr>',
      '"a, b" <sip:p2;lr;x=1,2>',
      '<sip:p3>',
    ]);
  });

  it('reads name-addr and addr-spec forms, with header params outside the URI', () => {
    expect(parseNameAddr('"Bot" <sip:bot@h;transport=udp>;tag=9')).toEqual({ uri: 'sip:bot@h;transport=udp', params: { tag: '9' } });
    expect(parseNameAddr('sip:bot@h;tag=9')).toEqual({ uri: 'sip:bot@h', params: { tag: '9' } });
    expect(tagOf('<sip:x@y>')).toBeUndefined();
    expect(parseNameAddr('<sip:unclosed')).toBeUndefined();
  });

  it('reads Via with IPv6 and without port', () => {
    expect(parseVia('SIP/2.0/udp [2001:db8::1]:5062;branch=z9hG4bK1')).toEqual({
      transport: 'UDP',
      host: '[2001:db8::1]',
      port: 5062,
      params: { branch: 'z9hG4bK1' },
    });
    expect(parseVia('SIP/2.0/TLS host.example;branch=z9hG4bK2')?.port).toBeUndefined();
  });

  it('reads SIP URIs and strips uri-parameters for To', () => {
    const uri = parseSipUri('sip:+17345551234@127.0.0.1:5070;transport=udp');
    expect(uri).toEqual({ scheme: 'sip', user: '+17345551234', host: '127.0.0.1', port: 5070, params: { transport: 'udp' } });
    expect(uriWithoutParams(uri!)).toBe('sip:+17345551234@127.0.0.1:5070');
    expect(parseSipUri('sips:ccai.example.com')).toMatchObject({ scheme: 'sips', host: 'ccai.example.com' });
    expect(parseSipUri('tel:+1234')).toBeUndefined();
  });
});
