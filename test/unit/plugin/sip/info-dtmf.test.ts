import { describe, expect, it } from 'vitest';
import { digitFromInfo } from '../../../../plugin/sip/info-dtmf.js';
import type { SipMessageView } from '../../../../plugin/sip/backend.js';

function info(contentType: string | undefined, body: string): SipMessageView {
  const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType };
  return { headers, body, get: (name) => headers[name.toLowerCase()], has: (name) => name.toLowerCase() in headers };
}

describe('a digit in a SIP INFO', () => {
  it.each([
    ['application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n', '5'],
    ['application/dtmf-relay', 'Signal= *\r\nDuration= 250', '*'],
    ['Application/DTMF-Relay; charset=utf-8', 'duration=100\r\nsignal=#', '#'],
    ['application/dtmf-relay', 'Signal=11\r\n', '#'],
    ['application/dtmf-relay', 'Signal=a\r\n', 'A'],
    ['application/dtmf', '7', '7'],
    ['application/dtmf', ' 10\r\n', '*'],
  ])('%s %j → %s', (type, body, digit) => {
    expect(digitFromInfo(info(type, body))).toBe(digit);
  });

  it.each([
    ['application/dtmf-relay', 'Duration=160'],
    ['application/dtmf-relay', 'Signal=16'],
    ['application/dtmf-relay', 'Signal=55'],
    ['application/dtmf-relay', 'Signal=E'],
    ['application/dtmf', ''],
    ['application/json', '{"digit":"5"}'],
    [undefined, 'Signal=5'],
  ])('%s %j is no digit', (type, body) => {
    expect(digitFromInfo(info(type, body))).toBeUndefined();
  });
});
