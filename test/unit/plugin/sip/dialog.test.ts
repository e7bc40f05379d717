import { describe, expect, it } from 'vitest';
import { Dialog } from '../../../../plugin/sip/embedded/dialog.js';
import { parseSipMessage, type IncomingMessage } from '../../../../plugin/sip/embedded/message.js';
import type { OutgoingRequest } from '../../../../plugin/sip/embedded/message-builder.js';

const invite: OutgoingRequest = {
  method: 'INVITE',
  uri: 'sip:bot@ccai.example.com;transport=udp',
  headers: [
    ['Via', 'SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKi;rport'],
    ['From', '<sip:talkdesk@10.0.0.9:5060>;tag=ours'],
    ['To', '<sip:bot@ccai.example.com>'],
    ['Call-ID', 'c1'],
    ['CSeq', '1 INVITE'],
  ],
  body: '',
};

function answer(extra: string[]): IncomingMessage {
  const raw = [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKi;rport',
    'From: <sip:talkdesk@10.0.0.9:5060>;tag=ours',
    'To: <sip:bot@ccai.example.com>;tag=theirs',
    'Call-ID: c1',
    'CSeq: 1 INVITE',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const r = parseSipMessage(raw);
  if (!r.ok) throw new Error(r.reason);
  return r.message;
}

const headersOf = (r: OutgoingRequest, name: string): string[] => r.headers.filter(([n]) => n === name).map(([, v]) => v);

describe('Dialog (UAC side, RFC 3261 §12)', () => {
  it('takes ids, remote target and the reversed Record-Route from the 2xx', () => {
    const d = Dialog.fromAnswer(
      invite,
      answer(['Contact: <sip:bot@10.1.1.1:5080;transport=udp>', 'Record-Route: <sip:p2.example;lr>', 'Record-Route: <sip:p1.example;lr>']),
    );
    expect(d.id).toBe(Dialog.idOf('c1', 'ours', 'theirs'));
    expect(d.nextHopUri).toBe('sip:p1.example;lr');
    const bye = d.createRequest('BYE', { via: 'SIP/2.0/UDP x;branch=z9hG4bKb', seq: d.nextSeq() });
    expect(bye.uri).toBe('sip:bot@10.1.1.1:5080;transport=udp');
    expect(headersOf(bye, 'Route')).toEqual(['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
    expect(headersOf(bye, 'CSeq')).toEqual(['2 BYE']);
    expect(headersOf(bye, 'From')).toEqual(['<sip:talkdesk@10.0.0.9:5060>;tag=ours']);
    expect(headersOf(bye, 'To')).toEqual(['<sip:bot@ccai.example.com>;tag=theirs']);
  });

  it('with a strict router first, puts it in the request-URI and the remote target last in Route', () => {
    const d = Dialog.fromAnswer(invite, answer(['Contact: <sip:bot@10.1.1.1>', 'Record-Route: <sip:p2.example;lr>, <sip:strict.example>']));
    const bye = d.createRequest('BYE', { via: 'v;branch=z9hG4bKb', seq: 2 });
    expect(bye.uri).toBe('sip:strict.example');
    expect(headersOf(bye, 'Route')).toEqual(['<sip:p2.example;lr>', '<sip:bot@10.1.1.1>']);
  });

  it('without Contact aims at the INVITE request-URI; a target refresh changes it', () => {
    const d = Dialog.fromAnswer(invite, answer([]));
    expect(d.nextHopUri).toBe(invite.uri);
    d.refreshTarget(answer(['Contact: <sip:bot@10.2.2.2:5090>']));
    expect(d.nextHopUri).toBe('sip:bot@10.2.2.2:5090');
  });

  it('refuses a remote CSeq lower than the last one (§12.2.2), but not ACK', () => {
    const d = Dialog.fromAnswer(invite, answer([]));
    const req = (cseq: string): IncomingMessage => ({ ...answer([]), cseq: { seq: Number(cseq.split(' ')[0]), method: cseq.split(' ')[1]! } });
    expect(d.acceptRemoteSeq(req('5 INFO'))).toBe(true);
    expect(d.acceptRemoteSeq(req('4 BYE'))).toBe(false);
    expect(d.acceptRemoteSeq(req('1 ACK'))).toBe(true);
    expect(d.acceptRemoteSeq(req('6 BYE'))).toBe(true);
  });
});
