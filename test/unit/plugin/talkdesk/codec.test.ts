import { describe, expect, it } from 'vitest';
import { markFrame, mediaFrame, parseFrame, stopFrame } from '../../../../plugin/talkdesk/codec.js';

const SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';
const ulaw = Buffer.from([0xff, 0x7f, 0x00, 0x80, 0x55]);

describe('parseFrame: messages Talkdesk sends', () => {
  it('reads connected', () => {
    expect(parseFrame('{"event":"connected","protocol":"Call","version":"1.0.0"}')).toEqual({ kind: 'connected' });
  });

  it('reads the documented start frame', () => {
    const frame = parseFrame(JSON.stringify({
      event: 'start',
      sequenceNumber: '1',
      start: {
        streamSid: SID, accountSid: 'acc-1', callSid: 'call-1', tracks: ['inbound'],
        customParameters: { interaction_id: 'int-1', agent_id: 'ag', account_id: 'acc-cp', type: 'bot', caller_id: '+1555', n: 7 },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: 'MZ-top-level',
    }));
    expect(frame).toEqual({
      kind: 'start', streamSid: SID, accountSid: 'acc-1', callSid: 'call-1', tracks: ['inbound'],
      customParameters: { interaction_id: 'int-1', agent_id: 'ag', account_id: 'acc-cp', type: 'bot', caller_id: '+1555', n: '7' },
      interactionId: 'int-1', accountId: 'acc-cp',
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    });
  });

  it('takes streamSid from the top level when start lacks it, and tolerates missing optional blocks', () => {
    expect(parseFrame(`{"event":"start","streamSid":"${SID}","start":{}}`)).toEqual({ kind: 'start', streamSid: SID, tracks: [], customParameters: {} });
    expect(parseFrame(`{"event":"start","streamSid":"${SID}"}`)).toMatchObject({ kind: 'start', streamSid: SID });
  });

  it('reads a simulator start: both tracks, string counters in mediaFormat, no customParameters', () => {
    const frame = parseFrame(`{"event":"start","start":{"streamSid":"${SID}","tracks":["inbound","outbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":"8000"}}}`);
    expect(frame).toMatchObject({ tracks: ['inbound', 'outbound'], customParameters: {}, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } });
  });

  it('keeps a __proto__ custom parameter as a plain key', () => {
    const frame = parseFrame(`{"event":"start","start":{"streamSid":"${SID}","customParameters":{"__proto__":"x","a":"b"}}}`);
    expect(frame.kind === 'start' && Object.getPrototypeOf(frame.customParameters)).toBe(Object.prototype);
    expect(frame.kind === 'start' && Object.keys(frame.customParameters)).toEqual(['__proto__', 'a']);
  });

  it('calls a start without any streamSid malformed', () => {
    expect(parseFrame('{"event":"start","start":{"callSid":"c"}}')).toEqual({ kind: 'malformed', why: 'start without streamSid' });
    expect(parseFrame('{"event":"start","start":{"streamSid":""}}').kind).toBe('malformed');
  });

  it('calls a streamSid that would need JSON escaping malformed, since it is echoed unescaped in media frames', () => {
    expect(parseFrame(JSON.stringify({ event: 'start', start: { streamSid: 'MZ"injected' } }))).toEqual({ kind: 'malformed', why: 'start streamSid has unexpected characters' });
    expect(parseFrame(JSON.stringify({ event: 'start', start: { streamSid: 'MZ\\x' } })).kind).toBe('malformed');
  });

  describe('ids are at most 128 printable characters: a longer or unprintable one refuses the start, never cut', () => {
    const start = (fields: { start?: Record<string, unknown>; customParameters?: Record<string, unknown> }): string =>
      JSON.stringify({ event: 'start', start: { streamSid: SID, ...fields.start, customParameters: fields.customParameters ?? {} } });
    const long = 'x'.repeat(129);

    it.each([
      ['streamSid', { start: { streamSid: long } }],
      ['callSid', { start: { callSid: long } }],
      ['accountSid', { start: { accountSid: long } }],
      ['interaction_id', { customParameters: { interaction_id: long } }],
      ['account_id', { customParameters: { account_id: long } }],
    ])('%s of 129 characters', (field, fields) => {
      expect(parseFrame(start(fields))).toEqual({ kind: 'malformed', why: `start ${field} longer than 128 characters` });
    });

    it('a 60 KB interaction_id (the flood that wrote 120 MB of log) is refused, saying why', () => {
      expect(parseFrame(start({ customParameters: { interaction_id: 'i'.repeat(60_000) } }))).toEqual({
        kind: 'malformed',
        why: 'start interaction_id longer than 128 characters',
      });
    });

    it.each([
      ['callSid', { start: { callSid: 'CA\u0000x' } }],
      ['accountSid', { start: { accountSid: 'AC\r\nX-Evil: 1' } }],
      ['interaction_id', { customParameters: { interaction_id: 'int\u2028' } }],
    ])('%s with a character outside printable ASCII', (field, fields) => {
      expect(parseFrame(start(fields))).toEqual({
        kind: 'malformed',
        why: `start ${field} has characters other than printable ASCII`,
      });
    });

    it('exactly 128 printable characters are kept whole', () => {
      const id = 'A'.repeat(64) + ' !#~"\\'.repeat(10) + 'z'.repeat(4);
      expect(id).toHaveLength(128);
      expect(parseFrame(start({ start: { callSid: id, accountSid: id }, customParameters: { interaction_id: id, account_id: id } }))).toMatchObject({
        kind: 'start', callSid: id, accountSid: id, interactionId: id, accountId: id,
      });
    });

    it('customParameters are bounded: at most 32, names of 128 and values of 1024 characters', () => {
      const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, 'v']));
      expect(parseFrame(start({ customParameters: many }))).toEqual({ kind: 'malformed', why: 'start has more than 32 customParameters' });
      expect(parseFrame(start({ customParameters: { ['n'.repeat(129)]: 'v' } }))).toEqual({
        kind: 'malformed',
        why: 'start customParameters name longer than 128 characters',
      });
      expect(parseFrame(start({ customParameters: { caller_context: 'v'.repeat(1025) } }))).toEqual({
        kind: 'malformed',
        why: 'start customParameters value longer than 1024 characters',
      });
      const most = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`p${i}`.padEnd(128, '-'), 'v'.repeat(1024)]));
      expect(parseFrame(start({ customParameters: most })).kind).toBe('start');
    });
  });

  it('decodes media with string counters', () => {
    const frame = parseFrame(JSON.stringify({ event: 'media', sequenceNumber: '3', media: { track: 'inbound', chunk: '1', timestamp: '0', payload: ulaw.toString('base64') }, streamSid: SID }));
    expect(frame).toEqual({ kind: 'media', track: 'inbound', payload: ulaw, chunk: 1, sequenceNumber: 3 });
  });

  it('decodes media with number counters, no track, and ignores counters it cannot read', () => {
    expect(parseFrame(JSON.stringify({ event: 'media', sequenceNumber: 0, media: { chunk: 2, payload: 'AAEC' } }))).toEqual({ kind: 'media', payload: Buffer.from([0, 1, 2]), chunk: 2, sequenceNumber: 0 });
    expect(parseFrame(JSON.stringify({ event: 'media', sequenceNumber: 'x', media: { chunk: -1, payload: 'AAEC' } }))).toEqual({ kind: 'media', payload: Buffer.from([0, 1, 2]) });
  });

  it('accepts unpadded base64 and an empty payload', () => {
    expect(parseFrame('{"event":"media","media":{"payload":"/38AgFU"}}')).toMatchObject({ payload: ulaw });
    expect(parseFrame('{"event":"media","media":{"payload":""}}')).toEqual({ kind: 'media', payload: Buffer.alloc(0) });
    expect(parseFrame('{"event":"media","media":{"payload":"/38AgFU="}}')).toMatchObject({ payload: ulaw });
    expect(parseFrame('{"event":"media","media":{"payload":"/w=="}}')).toMatchObject({ payload: Buffer.from([0xff]) });
  });

  it('delivers the outbound track only when asked to (the listen-only agent-assist stream)', () => {
    const text = '{"event":"media","media":{"track":"outbound","payload":"AAEC"}}';
    expect(parseFrame(text, { outboundTrack: true })).toEqual({ kind: 'media', track: 'outbound', payload: Buffer.from([0, 1, 2]) });
    expect(parseFrame(text, { outboundTrack: false })).toEqual({ kind: 'ignored', why: 'outbound track' });
  });

  it('ignores the outbound track: it may be our own audio coming back', () => {
    expect(parseFrame('{"event":"media","media":{"track":"outbound","payload":"AAEC"}}')).toEqual({ kind: 'ignored', why: 'outbound track' });
  });

  it.each([
    ['a character outside base64', 'AA$C'],
    ['a base64url character', 'AA-_'],
    ['a lone trailing character', 'AAECA'],
    ['padding in the middle', 'AA==AAEC'],
    ['whitespace', 'AA EC'],
    ['padding past the last quartet', 'AAA=='],
    ['half the padding', 'AA='],
    ['padding after a whole quartet', 'AAEC='],
    ['padding alone', '=='],
    ['a character outside ASCII', 'AAé='],
  ])('calls a payload with %s malformed', (_, payload) => {
    expect(parseFrame(JSON.stringify({ event: 'media', media: { payload } }))).toEqual({ kind: 'malformed', why: 'media payload is not base64' });
  });

  it('calls media without a payload string malformed', () => {
    expect(parseFrame('{"event":"media","media":{"track":"inbound"}}')).toEqual({ kind: 'malformed', why: 'media without a payload string' });
    expect(parseFrame('{"event":"media","media":{"payload":123}}').kind).toBe('malformed');
    expect(parseFrame('{"event":"media"}').kind).toBe('malformed');
  });

  it('reads stop, a mark echo and dtmf', () => {
    expect(parseFrame(`{"event":"stop","sequenceNumber":"53","stop":{"accountSid":"a","callSid":"c"},"streamSid":"${SID}"}`)).toEqual({ kind: 'stop' });
    expect(parseFrame(`{"event":"mark","sequenceNumber":"97","streamSid":"${SID}","mark":{"name":"utt-7"}}`)).toEqual({ kind: 'mark', name: 'utt-7' });
    expect(parseFrame('{"event":"dtmf","dtmf":{"digit":"5"}}')).toEqual({ kind: 'dtmf', digit: '5' });
  });

  it('calls a mark without a name and a dtmf without a valid digit malformed', () => {
    expect(parseFrame('{"event":"mark","mark":{}}')).toEqual({ kind: 'malformed', why: 'mark without mark.name' });
    expect(parseFrame('{"event":"dtmf","dtmf":{"digit":"55"}}').kind).toBe('malformed');
    expect(parseFrame('{"event":"dtmf"}').kind).toBe('malformed');
  });
});

describe('parseFrame: keep-alives and junk never throw', () => {
  it.each([
    ['an empty object', '{}', { kind: 'ignored', why: 'no event' }],
    ['a keepalive event', '{"event":"keepalive"}', { kind: 'ignored', why: 'unknown event "keepalive"' }],
    ['a non-string event', '{"event":42}', { kind: 'ignored', why: 'unknown event 42' }],
    ['a Twilio-only event', '{"event":"clear"}', { kind: 'ignored', why: 'unknown event "clear"' }],
    ['text that is not JSON', 'ping', { kind: 'malformed', why: 'not JSON' }],
    ['an empty frame', '', { kind: 'malformed', why: 'not JSON' }],
    ['binary-ish text', '\u0000\u00ff\ufffd\u0001{', { kind: 'malformed', why: 'not JSON' }],
    ['a JSON array', '[{"event":"start"}]', { kind: 'malformed', why: 'not a JSON object' }],
    ['JSON null', 'null', { kind: 'malformed', why: 'not a JSON object' }],
    ['a JSON string', '"media"', { kind: 'malformed', why: 'not a JSON object' }],
  ])('%s', (_, text, expected) => {
    expect(parseFrame(text)).toEqual(expected);
  });

  it('survives random bytes', () => {
    for (let i = 0; i < 500; i++) {
      const text = Buffer.from(Array.from({ length: 1 + (i % 40) }, (_, j) => (i * 31 + j * 17) % 256)).toString('latin1');
      expect(() => parseFrame(text)).not.toThrow();
    }
  });
});

describe('frames we send', () => {
  it('media is valid JSON with exactly the documented fields', () => {
    const text = mediaFrame(SID, ulaw.toString('base64'));
    expect(JSON.parse(text)).toEqual({ event: 'media', streamSid: SID, media: { payload: ulaw.toString('base64') } });
  });

  it('media round-trips with the streamSid of any start frame parseFrame accepted', () => {
    const sid = "MZ 'odd' {id}/+=~";
    const start = parseFrame(JSON.stringify({ event: 'start', start: { streamSid: sid } }));
    expect(start.kind).toBe('start');
    expect(JSON.parse(mediaFrame(sid, 'AAEC')).streamSid).toBe(sid);
  });

  it('mark', () => {
    expect(JSON.parse(markFrame(SID, 'utt-"7"'))).toEqual({ event: 'mark', streamSid: SID, mark: { name: 'utt-"7"' } });
  });

  it('stop carries the documented fields, the sequence number as a string, and the ring group only when escalating', () => {
    expect(stopFrame({ streamSid: SID, sequenceNumber: 1, accountSid: 'acc', callSid: 'call', command: 'escalate', ringGroup: 'billing_es' })).toBe(
      `{"event":"stop","sequenceNumber":"1","streamSid":"${SID}","stop":{"accountSid":"acc","callSid":"call","command":"escalate","ringGroup":"billing_es"}}`,
    );
    expect(JSON.parse(stopFrame({ streamSid: SID, sequenceNumber: 7, command: 'ok', ringGroup: 'ignored' }))).toEqual({
      event: 'stop',
      sequenceNumber: '7',
      streamSid: SID,
      stop: { command: 'ok', ringGroup: null },
    });
    expect(JSON.parse(stopFrame({ sequenceNumber: 1, command: 'error' }))).toEqual({ event: 'stop', sequenceNumber: '1', stop: { command: 'error', ringGroup: null } });
    expect(JSON.parse(stopFrame({ sequenceNumber: 1, command: 'escalate', ringGroup: null })).stop.ringGroup).toBeNull();
  });
});
