import SipMessage from 'drachtio-srf/lib/sip-parser/message.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../config/load.js';
import type { EscalationRule } from '../../../../config/schema.js';
import { compileRules, decodeUui, type HeaderSource } from '../../../../plugin/call/escalation.js';

/** A BYE as drachtio-srf parses it (its SipMessage is what both SIP backends hand over). */
function bye(...headers: string[]): HeaderSource {
  return new SipMessage([
    'BYE sip:talkdesk-gw@127.0.0.1:5080;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1',
    'From: <sip:+17345551234@127.0.0.1:5070>;tag=1SIPpTag011',
    'To: <sip:talkdesk-gw@127.0.0.1:5080>;tag=abc',
    'Call-ID: call-1@127.0.0.1',
    'CSeq: 1 BYE',
    'Max-Forwards: 70',
    'Contact: <sip:bot@127.0.0.1:5070;transport=udp>',
    ...headers,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'));
}

/** the escalation headers of the BYE in /work/shared/sipp/uas_bot.xml, verbatim */
const X_ESCALATE = 'X-Escalate: true';
const X_ESCALATION_DATA = 'X-Escalation-Data: {"reason":"agent_requested","queue":"billing","intent":"refund","confidence":0.93}';
const USER_TO_USER = 'User-to-User: 7b227175657565223a2262696c6c696e67227d;encoding=hex;purpose=isdn-uui;content=isdn-uui';

function shippedPolicy() {
  const loaded = loadConfig({ file: join(import.meta.dirname, '../../../../jambonz-app.json'), env: {} });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return compileRules(loaded.config.escalation.rules, loaded.config.escalation.defaultRingGroup);
}

describe('the shipped default rules', () => {
  const policy = shippedPolicy();

  it('escalate the sipp bot BYE to billing, by the first rule', () => {
    expect(policy(bye(X_ESCALATE, X_ESCALATION_DATA, USER_TO_USER))).toEqual({ command: 'escalate', ringGroup: 'billing', rule: 'x-escalation-data' });
  });

  it('read the ring group from the hex User-to-User alone', () => {
    expect(policy(bye(USER_TO_USER))).toEqual({ command: 'escalate', ringGroup: 'billing', rule: 'user-to-user' });
  });

  it('send X-Escalate: true alone to the default ring group, whatever its case', () => {
    expect(policy(bye(X_ESCALATE))).toEqual({ command: 'escalate', ringGroup: 'agents', rule: 'x-escalate' });
    expect(policy(bye('X-Escalate: YES'))).toMatchObject({ command: 'escalate', ringGroup: 'agents' });
  });

  it('leave X-Escalate: false a normal end', () => {
    expect(policy(bye('X-Escalate: false'))).toEqual({ command: 'ok' });
  });

  it('end a plain BYE, or one from voiceUtils.hangup, normally', () => {
    expect(policy(bye())).toEqual({ command: 'ok' });
    expect(policy(bye('X-Reason: completed'))).toEqual({ command: 'ok' });
  });

  it('escalate on a Reason header whose text says transfer', () => {
    expect(policy(bye('Reason: SIP;cause=200;text="Transfer to agent"'))).toEqual({ command: 'escalate', ringGroup: 'agents', rule: 'reason-transfer' });
  });

  it('leave other Reason texts (drachtio\'s session-timer BYE) a normal end', () => {
    expect(policy(bye('Reason: SIP ;cause=200 ;text="Session timer expired"'))).toEqual({ command: 'ok' });
  });

  it('still escalate when X-Escalation-Data is not JSON, to the default ring group', () => {
    expect(policy(bye('X-Escalation-Data: queue=billing'))).toEqual({ command: 'escalate', ringGroup: 'agents', rule: 'x-escalation-data' });
  });
});

describe('compileRules', () => {
  const source = (headers: Record<string, string>): HeaderSource => ({ get: (name) => headers[name.toLowerCase()] });

  it('takes the ring group from the first capture group when there is no field', () => {
    const policy = compileRules([{ header: 'X-Route', match: '^queue=(\\w+)' }], 'agents');
    expect(policy(source({ 'x-route': 'queue=sales;prio=1' }))).toEqual({ command: 'escalate', ringGroup: 'sales', rule: 'X-Route' });
    expect(policy(source({ 'x-route': 'nothing' }))).toEqual({ command: 'ok' });
  });

  it('falls back field → capture group → rule ringGroup → default', () => {
    const rule: EscalationRule = { header: 'X-D', match: '^.*?(?:"g":"([\\w-]+)"|$)', field: 'routing.group', ringGroup: 'rule-group' };
    const policy = compileRules([rule], 'default-group');
    expect(policy(source({ 'x-d': '{"routing":{"group":"from-field"}}' }))).toMatchObject({ ringGroup: 'from-field' });
    expect(policy(source({ 'x-d': '{"g":"from-capture"}' }))).toMatchObject({ ringGroup: 'from-capture' });
    expect(policy(source({ 'x-d': 'x' }))).toMatchObject({ ringGroup: 'rule-group' });
    expect(compileRules([{ header: 'X-D' }], 'default-group')(source({ 'x-d': '' }))).toMatchObject({ ringGroup: 'default-group' });
  });

  it('reads a numeric JSON field, and skips an object one', () => {
    const policy = compileRules([{ header: 'X-D', field: 'q' }], 'agents');
    expect(policy(source({ 'x-d': '{"q":42}' }))).toMatchObject({ ringGroup: '42' });
    expect(policy(source({ 'x-d': '{"q":{"deep":1}}' }))).toMatchObject({ ringGroup: 'agents' });
    expect(policy(source({ 'x-d': '{"toString":"x"}' }))).toMatchObject({ ringGroup: 'agents' });
  });

  it('lets the first matching rule win', () => {
    const policy = compileRules([{ name: 'a', header: 'X-A', ringGroup: 'ga' }, { name: 'b', header: 'X-B', ringGroup: 'gb' }], 'd');
    expect(policy(source({ 'x-a': '1', 'x-b': '1' }))).toMatchObject({ rule: 'a', ringGroup: 'ga' });
    expect(policy(source({ 'x-b': '1' }))).toMatchObject({ rule: 'b', ringGroup: 'gb' });
  });

  it('strips control characters and caps the ring group at 256 characters', () => {
    const policy = compileRules([{ header: 'X-D', field: 'q' }], 'agents');
    expect(policy(source({ 'x-d': JSON.stringify({ q: 'bil\u0000ling\r\n' }) }))).toMatchObject({ ringGroup: 'billing' });
    const long = policy(source({ 'x-d': JSON.stringify({ q: 'g'.repeat(1000) }) }));
    expect(long.command === 'escalate' && long.ringGroup).toBe('g'.repeat(256));
    expect(policy(source({ 'x-d': JSON.stringify({ q: '\u0001\u0002' }) }))).toMatchObject({ ringGroup: 'agents' });
  });

  it('escalates nothing with no rules', () => {
    expect(compileRules([], 'agents')(source({ 'x-escalate': 'true' }))).toEqual({ command: 'ok' });
  });
});

describe('decodeUui', () => {
  it.each([
    ['hex with encoding=hex', '7b2271223a2261227d;encoding=hex;purpose=isdn-uui', '{"q":"a"}'],
    ['upper-case hex and parameter', '7B2271223A2261227D;Encoding=HEX', '{"q":"a"}'],
    ['hex without an encoding parameter', '62696c6c696e67', 'billing'],
    ['text that is not hex', 'queue=billing;purpose=isdn-uui', 'queue=billing'],
    ['odd-length hex-looking text', 'abc', 'abc'],
    ['a declared non-hex encoding', '6566;encoding=ascii', '6566'],
    ['encoding=hex over data that is not hex', 'billing;encoding=hex', 'billing'],
  ])('%s', (_, header, expected) => {
    expect(decodeUui(header)).toBe(expected);
  });
});
