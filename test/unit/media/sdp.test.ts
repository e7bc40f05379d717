import { describe, expect, it } from 'vitest';
import { buildOffer, parseAnswer } from '../../../media/sdp.js';

/** The 200 OK body of /work/shared/sipp/uas_bot.xml with its keywords filled in, as sipp sends it (CRLF). */
const SIPP_BOT_ANSWER = [
  'v=0',
  'o=bot 53655765 2353687637 IN IP4 127.0.0.1',
  's=bot',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'm=audio 6000 RTP/AVP 0 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

function answer(...lines: string[]): string {
  return lines.join('\r\n') + '\r\n';
}

describe('buildOffer', () => {
  it('produces the exact offer sipp and bots expect (golden)', () => {
    expect(buildOffer({ address: '10.1.2.3', port: 40000, sessionId: '123456' })).toBe(
      'v=0\r\n' +
        'o=- 123456 123456 IN IP4 10.1.2.3\r\n' +
        's=-\r\n' +
        'c=IN IP4 10.1.2.3\r\n' +
        't=0 0\r\n' +
        'm=audio 40000 RTP/AVP 0 101\r\n' +
        'a=rtpmap:0 PCMU/8000\r\n' +
        'a=rtpmap:101 telephone-event/8000\r\n' +
        'a=fmtp:101 0-16\r\n' +
        'a=ptime:20\r\n' +
        'a=sendrecv\r\n' +
        'a=rtcp-mux\r\n',
    );
  });

  it('uses the given telephone-event payload type and a random numeric session id by default', () => {
    const sdp = buildOffer({ address: '10.1.2.3', port: 40002, dtmfPayloadType: 96 });
    expect(sdp).toContain('m=audio 40002 RTP/AVP 0 96\r\n');
    expect(sdp).toContain('a=rtpmap:96 telephone-event/8000\r\n');
    expect(sdp).toMatch(/^v=0\r\no=- (\d+) \1 IN IP4 10\.1\.2\.3\r\n/);
  });

  it('round-trips through parseAnswer', () => {
    const parsed = parseAnswer(buildOffer({ address: '192.0.2.7', port: 40010, sessionId: '1' }));
    expect(parsed).toEqual({
      ok: true,
      value: { address: '192.0.2.7', port: 40010, audioPayloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv', rtcpMux: true },
    });
  });

  it.each([
    ['0.0.0.0', 40000],
    ['bot.example.com', 40000],
    ['::1', 40000],
    ['10.0.0.1', 0],
    ['10.0.0.1', 70000],
  ])('refuses address=%s port=%s', (address, port) => {
    expect(() => buildOffer({ address, port })).toThrow(RangeError);
  });
});

describe('parseAnswer', () => {
  it("reads sipp's uas_bot.xml answer", () => {
    expect(parseAnswer(SIPP_BOT_ANSWER)).toEqual({
      ok: true,
      value: { address: '127.0.0.1', port: 6000, audioPayloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv' },
    });
  });

  it('accepts LF-only line ends', () => {
    const parsed = parseAnswer(SIPP_BOT_ANSWER.replaceAll('\r\n', '\n'));
    expect(parsed.ok && parsed.value.port).toBe(6000);
  });

  it('lets a media-level c= override the session-level one', () => {
    const parsed = parseAnswer(
      answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004 RTP/AVP 0', 'c=IN IP4 10.0.0.2'),
    );
    expect(parsed.ok && parsed.value.address).toBe('10.0.0.2');
  });

  it('takes the DTMF payload type from the answer (sipp play_dtmf uses 96) and omits it when absent', () => {
    const with96 = parseAnswer(
      answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004 RTP/AVP 0 96', 'a=rtpmap:96 telephone-event/8000'),
    );
    expect(with96.ok && with96.value.dtmfPayloadType).toBe(96);
    const without = parseAnswer(answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004 RTP/AVP 0'));
    expect(without.ok && 'dtmfPayloadType' in without.value).toBe(false);
  });

  it('uses the first m=audio even after a video stream, and ignores later streams', () => {
    const parsed = parseAnswer(
      answer(
        'v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0',
        'm=video 0 RTP/AVP 96', 'c=IN IP4 10.9.9.9',
        'm=audio 5004 RTP/AVP 8 0', 'a=sendonly',
        'm=audio 6000 RTP/AVP 0', 'c=IN IP4 10.8.8.8',
      ),
    );
    expect(parsed).toEqual({ ok: true, value: { address: '10.0.0.1', port: 5004, audioPayloadType: 0, direction: 'sendonly' } });
  });

  it.each([
    ['a=rtcp-mux (RFC 5761)', ['a=rtcp-mux', 'a=rtcp:7000'], { rtcpMux: true }],
    ['a=rtcp with a port (RFC 3605)', ['a=rtcp:7001'], { rtcpPort: 7001 }],
    ['a=rtcp at the stream\'s own address', ['a=rtcp:7001 IN IP4 127.0.0.1'], { rtcpPort: 7001 }],
    ['a=rtcp at another address: ignored, RTCP goes where RTP comes from', ['a=rtcp:7001 IN IP4 192.0.2.9'], {}],
    ['a malformed a=rtcp: ignored, not worth failing the call', ['a=rtcp:seven'], {}],
    ['a=rtcp at session level: ignored', [], {}],
  ])('reads %s', (_name, attributes, expected) => {
    const parsed = parseAnswer(answer('v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'a=rtcp:9999', 'm=audio 6000 RTP/AVP 0', ...attributes));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect({ rtcpMux: parsed.value.rtcpMux, rtcpPort: parsed.value.rtcpPort }).toEqual({ rtcpMux: undefined, rtcpPort: undefined, ...expected });
  });

  it('takes the media-level direction over the session-level one', () => {
    const parsed = parseAnswer(
      answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'a=inactive', 'm=audio 5004 RTP/AVP 0', 'a=recvonly'),
    );
    expect(parsed.ok && parsed.value.direction).toBe('recvonly');
  });

  it('treats c=0.0.0.0 as hold: ok, inactive', () => {
    const parsed = parseAnswer(answer('v=0', 'o=- 1 2 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 5004 RTP/AVP 0', 'a=sendrecv'));
    expect(parsed).toEqual({ ok: true, value: { address: '0.0.0.0', port: 5004, audioPayloadType: 0, direction: 'inactive' } });
  });

  it.each([
    ['no PCMU', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004 RTP/AVP 8 101'), /no PCMU/],
    ['no m=audio', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=video 5004 RTP/AVP 96'), /no m=audio/],
    ['port 0', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 0 RTP/AVP 0'), /rejected the audio stream/],
    ['no c=', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 't=0 0', 'm=audio 5004 RTP/AVP 0'), /no c= line/],
    ['IPv6', answer('v=0', 'o=- 1 1 IN IP6 ::1', 's=-', 'c=IN IP6 2001:db8::1', 't=0 0', 'm=audio 5004 RTP/AVP 0'), /IPv6 .* not supported/],
    ['hostname', answer('v=0', 'o=- 1 1 IN IP4 h', 's=-', 'c=IN IP4 bot.example.com', 't=0 0', 'm=audio 5004 RTP/AVP 0'), /not a numeric IPv4/],
    ['AVPF (WebRTC)', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004 RTP/SAVPF 0'), /unsupported audio transport RTP\/SAVPF/],
    ['DTLS-SRTP', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004 UDP/TLS/RTP/SAVP 0'), /unsupported audio transport UDP\/TLS/],
    ['bad port', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 99999 RTP/AVP 0'), /malformed port/],
    ['short m=', answer('v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 5004'), /malformed m= line/],
    ['garbage line', answer('v=0', 'hello world', 'm=audio 5004 RTP/AVP 0'), /malformed SDP line 2/],
    ['not SDP', '<html>502 Bad Gateway</html>', /does not start with v=0/],
    ['empty', '', /does not start with v=0/],
  ])('fails clearly on %s', (_name, sdp, message) => {
    const parsed = parseAnswer(sdp);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(message);
  });

  it('never throws, even on a non-string', () => {
    expect(parseAnswer(undefined as unknown as string)).toEqual({ ok: false, error: 'answer SDP is not a string' });
  });
});

describe('SDES-SRTP in the offer and the answer', () => {
  const CRYPTO = '1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz';

  it("'required' offers RTP/SAVP with our a=crypto (golden)", () => {
    expect(buildOffer({ address: '10.1.2.3', port: 40000, sessionId: '123456', srtp: { mode: 'required', crypto: CRYPTO } })).toBe(
      'v=0\r\n' +
        'o=- 123456 123456 IN IP4 10.1.2.3\r\n' +
        's=-\r\n' +
        'c=IN IP4 10.1.2.3\r\n' +
        't=0 0\r\n' +
        'm=audio 40000 RTP/SAVP 0 101\r\n' +
        'a=rtpmap:0 PCMU/8000\r\n' +
        'a=rtpmap:101 telephone-event/8000\r\n' +
        'a=fmtp:101 0-16\r\n' +
        'a=ptime:20\r\n' +
        'a=sendrecv\r\n' +
        'a=rtcp-mux\r\n' +
        `a=crypto:${CRYPTO}\r\n`,
    );
  });

  it("'optional' offers best-effort SRTP: RTP/AVP carrying a=crypto", () => {
    const sdp = buildOffer({ address: '10.1.2.3', port: 40000, srtp: { mode: 'optional', crypto: CRYPTO } });
    expect(sdp).toContain('m=audio 40000 RTP/AVP 0 101\r\n');
    expect(sdp).toContain(`\r\na=crypto:${CRYPTO}\r\n`);
  });

  it('refuses a crypto value that would inject SDP lines', () => {
    expect(() => buildOffer({ address: '10.1.2.3', port: 40000, srtp: { mode: 'optional', crypto: `${CRYPTO}\r\na=recvonly` } })).toThrow(
      RangeError,
    );
  });

  it('reads an RTP/SAVP answer and its crypto attributes in order, media level only', () => {
    const parsed = parseAnswer(
      answer(
        'v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0',
        'a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:session-level-is-ignored',
        'm=audio 5004 RTP/SAVP 0 101', 'a=rtpmap:101 telephone-event/8000',
        'a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:AAAA', `a=crypto:${CRYPTO}|2^31`,
        'm=video 0 RTP/SAVP 96', 'a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:video',
      ),
    );
    expect(parsed).toEqual({
      ok: true,
      value: {
        address: '10.0.0.1', port: 5004, audioPayloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv',
        savp: true, crypto: ['1 AES_CM_128_HMAC_SHA1_32 inline:AAAA', `${CRYPTO}|2^31`],
      },
    });
  });

  it('round-trips an SRTP offer through parseAnswer', () => {
    const parsed = parseAnswer(buildOffer({ address: '192.0.2.7', port: 40010, sessionId: '1', srtp: { mode: 'required', crypto: CRYPTO } }));
    expect(parsed.ok && parsed.value).toMatchObject({ savp: true, crypto: [CRYPTO] });
  });
});
