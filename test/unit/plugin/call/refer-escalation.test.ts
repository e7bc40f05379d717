import SipMessage from 'drachtio-srf/lib/sip-parser/message.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../config/load.js';
import { compileRules, parseReferTo, referVerdict, type HeaderSource } from '../../../../plugin/call/escalation.js';

/** A REFER as drachtio-srf parses it (its SipMessage is what both SIP backends hand over). */
function refer(...headers: string[]): HeaderSource {
  return new SipMessage([
    'REFER sip:talkdesk-gw@127.0.0.1:5080;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5074;branch=z9hG4bK-1',
    'From: <sip:+17345551234@127.0.0.1:5074>;tag=1SIPpTag011',
    'To: <sip:talkdesk-gw@127.0.0.1:5080>;tag=abc',
    'Call-ID: call-1@127.0.0.1',
    'CSeq: 2 REFER',
    'Max-Forwards: 70',
    'Contact: <sip:bot@127.0.0.1:5074;transport=udp>',
    ...headers,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'));
}

const DEFAULT_RING_GROUP = 'agents';

function shipped() {
  const loaded = loadConfig({ file: join(import.meta.dirname, '../../../../jambonz-app.json'), env: {} });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return compileRules(loaded.config.escalation.rules, loaded.config.escalation.defaultRingGroup);
}

describe('parseReferTo', () => {
  it('reads the user part of sip, sips and tel targets, %-decoded, user parameters cut', () => {
    expect(parseReferTo('<sip:billing@agents.example.com;transport=tls>').user).toBe('billing');
    expect(parseReferTo('"Sales" <sips:sales-queue@pbx.example.com>;x=1').user).toBe('sales-queue');
    expect(parseReferTo('sip:%2B18005550100@carrier.example').user).toBe('+18005550100');
    expect(parseReferTo('<tel:+18005550100;phone-context=example.com>').user).toBe('+18005550100');
    expect(parseReferTo('<sip:+18005550100;npdi@carrier.example>').user).toBe('+18005550100');
    expect(parseReferTo('<sip:carrier.example>').user).toBeUndefined();
    expect(parseReferTo(undefined)).toEqual({ headers: {} });
  });

  it('decodes the headers embedded in the URI, names lower-cased', () => {
    expect(parseReferTo('<sip:q@h?X-Queue=billing&X-Escalation-Data=%7B%22queue%22%3A%22vip%22%7D>').headers).toEqual({
      'x-queue': 'billing',
      'x-escalation-data': '{"queue":"vip"}',
    });
    expect(parseReferTo('<sip:q@h?X-Bad=%E0%A4%A>').headers).toEqual({ 'x-bad': '%E0%A4%A' }); // kept as sent
  });
});

describe('referVerdict: a REFER is always an escalation', () => {
  it('with the shipped rules and no escalation header: the Refer-To user part is the ring group', () => {
    expect(referVerdict(shipped(), refer('Refer-To: <sip:billing@agents.example.com>'), DEFAULT_RING_GROUP)).toEqual({
      command: 'escalate',
      ringGroup: 'billing',
      rule: 'refer-to-user',
    });
  });

  it('with no usable Refer-To user part: DEFAULT_RING_GROUP', () => {
    expect(referVerdict(shipped(), refer('Refer-To: <sip:agents.example.com>'), DEFAULT_RING_GROUP)).toEqual({
      command: 'escalate',
      ringGroup: 'agents',
      rule: 'refer-default',
    });
  });

  it('the BYE rules read the REFER\'s own X-headers first', () => {
    const verdict = referVerdict(
      shipped(),
      refer('Refer-To: <sip:+18005550100@carrier.example>', 'X-Escalation-Data: {"queue":"vip"}'),
      DEFAULT_RING_GROUP,
    );
    expect(verdict).toEqual({ command: 'escalate', ringGroup: 'vip', rule: 'x-escalation-data' });
  });

  it('the BYE rules read headers embedded in Refer-To (?X-Queue=…), decoded; the REFER\'s own header wins', () => {
    const policy = compileRules([{ name: 'x-queue', header: 'X-Queue', match: '^(.+)$' }], DEFAULT_RING_GROUP);
    expect(referVerdict(policy, refer('Refer-To: <sip:transfer@kore.example?X-Queue=billing%20east>'), DEFAULT_RING_GROUP)).toEqual({
      command: 'escalate',
      ringGroup: 'billing east',
      rule: 'x-queue',
    });
    expect(referVerdict(policy, refer('Refer-To: <sip:transfer@kore.example?X-Queue=billing>', 'X-Queue: priority'), DEFAULT_RING_GROUP).ringGroup).toBe(
      'priority',
    );
  });

  it('a rule can read Refer-To itself, as the README documents', () => {
    const policy = compileRules([{ name: 'refer-to', header: 'Refer-To', match: '^<?sips?:([^@;>]+)' }], DEFAULT_RING_GROUP);
    expect(referVerdict(policy, refer('Refer-To: sip:support@pbx.example'), DEFAULT_RING_GROUP)).toEqual({
      command: 'escalate',
      ringGroup: 'support',
      rule: 'refer-to',
    });
  });

  it('a rule that matches without a ring group falls back to the Refer-To user part, then DEFAULT_RING_GROUP', () => {
    const policy = shipped(); // x-escalate: match without a capture group
    expect(referVerdict(policy, refer('Refer-To: <sip:billing@h>', 'X-Escalate: true'), DEFAULT_RING_GROUP)).toEqual({
      command: 'escalate',
      ringGroup: 'billing',
      rule: 'x-escalate',
    });
    expect(referVerdict(policy, refer('Refer-To: <sip:h>', 'X-Escalate: true'), DEFAULT_RING_GROUP).ringGroup).toBe('agents');
  });

  it('the BYE policy is unchanged without a fallback ring group', () => {
    expect(shipped()(refer('X-Escalate: true'))).toEqual({ command: 'escalate', ringGroup: 'agents', rule: 'x-escalate' });
    expect(shipped()(refer('Refer-To: <sip:billing@h>'))).toEqual({ command: 'ok' });
  });
});
