import { parseArgs } from 'node:util';

export const PROBE_USAGE = [
  'usage: npm run probe -- [--target sip:+1…@host[:port][;transport=udp|tcp|tls] | --sipuri +1…] [--bot st-…]',
  '         [--say "text" | --wav file.wav] [--record bot.wav] [--dtmf 12#] [--hangup-after 20s]',
  '         [--expect ok|escalate[:ringGroup]|error] [--json]',
].join('\n');

/** How the probe's call ended, as Talkdesk Studio would take it. */
export type Expectation = { command: 'ok' | 'error' } | { command: 'escalate'; ringGroup?: string };

export interface ProbeOptions {
  /** a SIP URI whose user is the number and whose host (port, transport) replaces CCAI_SIP_HOST (…) for this call */
  target?: string;
  /** the number, to the configured CCAI: the Talkdesk `sipuri` */
  sipuri?: string;
  /** which bot of BOTS signs the token; the first when absent */
  botId?: string;
  say?: string;
  wav?: string;
  record?: string;
  dtmf: string;
  /** the caller hangs up this long after the answer, unless the bot ended the call first */
  hangupAfterMs: number;
  expect?: Expectation;
  json: boolean;
}

export type ParsedOptions = { ok: true; value: ProbeOptions } | { ok: false; error: string };

/** When nobody says: long enough for a greeting and a turn, short enough for a script. */
const DEFAULT_HANGUP_AFTER_MS = 30_000;
const DIGITS = /^[0-9*#A-D]*$/;

/** The command line, checked: a result, never a throw. */
export function parseProbeArgs(args: string[]): ParsedOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        target: { type: 'string' },
        sipuri: { type: 'string' },
        bot: { type: 'string' },
        say: { type: 'string' },
        wav: { type: 'string' },
        record: { type: 'string' },
        dtmf: { type: 'string', default: '' },
        'hangup-after': { type: 'string' },
        expect: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    return fail((err as Error).message);
  }
  if (values.target === undefined && values.sipuri === undefined) return fail('give --sipuri (the number the bot answers) or --target (a SIP URI)');
  if (values.target !== undefined && values.sipuri !== undefined) return fail('--target carries the number: give --target or --sipuri, not both');
  if (values.say !== undefined && values.wav !== undefined) return fail('the caller says one thing: --say or --wav, not both');
  if (!DIGITS.test(values.dtmf)) return fail(`--dtmf ${values.dtmf}: digits are 0-9, *, # and A-D`);
  const hangupAfterMs = values['hangup-after'] === undefined ? DEFAULT_HANGUP_AFTER_MS : durationMs(values['hangup-after']);
  if (hangupAfterMs === undefined) return fail(`--hangup-after ${values['hangup-after']}: a duration such as 20s, 1500ms or 2m`);
  let expect: Expectation | undefined;
  if (values.expect !== undefined) {
    expect = expectation(values.expect);
    if (expect === undefined) return fail(`--expect ${values.expect}: one of ok, error, escalate, escalate:<ring group>`);
  }
  return {
    ok: true,
    value: {
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(values.sipuri === undefined ? {} : { sipuri: values.sipuri }),
      ...(values.bot === undefined ? {} : { botId: values.bot }),
      ...(values.say === undefined ? {} : { say: values.say }),
      ...(values.wav === undefined ? {} : { wav: values.wav }),
      ...(values.record === undefined ? {} : { record: values.record }),
      dtmf: values.dtmf,
      hangupAfterMs,
      ...(expect === undefined ? {} : { expect }),
      json: values.json,
    },
  };
}

function durationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) return undefined;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  return ms > 0 ? Math.round(ms) : undefined;
}

function expectation(text: string): Expectation | undefined {
  if (text === 'ok' || text === 'error') return { command: text };
  if (text === 'escalate') return { command: 'escalate' };
  const m = /^escalate:(.+)$/.exec(text);
  return m === null ? undefined : { command: 'escalate', ringGroup: m[1]! };
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
