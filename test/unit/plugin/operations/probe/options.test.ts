import { describe, expect, it } from 'vitest';
import { parseProbeArgs } from '../../../../../plugin/operations/probe/options.js';

describe('probe options', () => {
  it('reads every option, with a 30 s hang-up and no expectation by default', () => {
    expect(parseProbeArgs(['--sipuri', '+1555'])).toEqual({ ok: true, value: { sipuri: '+1555', dtmf: '', hangupAfterMs: 30_000, json: false } });
    expect(
      parseProbeArgs(['--target', 'sip:+1@h', '--bot', 'st-1', '--say', 'hi', '--record', 'b.wav', '--dtmf', '12#', '--hangup-after', '1.5s', '--expect', 'escalate:sales', '--json']),
    ).toEqual({
      ok: true,
      value: { target: 'sip:+1@h', botId: 'st-1', say: 'hi', record: 'b.wav', dtmf: '12#', hangupAfterMs: 1500, expect: { command: 'escalate', ringGroup: 'sales' }, json: true },
    });
  });

  it.each([
    [['--hangup-after', '250ms'], 250],
    [['--hangup-after', '2m'], 120_000],
    [['--hangup-after', '20'], 20_000],
  ])('takes %j as %i ms', (args, ms) => {
    expect(parseProbeArgs(['--sipuri', '+1', ...args])).toMatchObject({ ok: true, value: { hangupAfterMs: ms } });
  });

  it.each([
    [[], /give --sipuri .* or --target/],
    [['--sipuri', '+1', '--target', 'sip:+1@h'], /not both/],
    [['--sipuri', '+1', '--say', 'a', '--wav', 'b'], /--say or --wav, not both/],
    [['--sipuri', '+1', '--dtmf', '12x'], /--dtmf 12x: digits are 0-9/],
    [['--sipuri', '+1', '--hangup-after', 'soon'], /a duration such as 20s/],
    [['--sipuri', '+1', '--hangup-after', '0s'], /a duration/],
    [['--sipuri', '+1', '--expect', 'escalate:'], /one of ok, error, escalate/],
    [['--sipuri', '+1', '--nope'], /Unknown option '--nope'/],
  ])('refuses %j with the reason', (args, why) => {
    const parsed = parseProbeArgs(args);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(why);
  });
});
