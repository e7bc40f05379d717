import { randomInt } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { SrtpKeys } from './sdes.js';

/** What we offer the bot: PCMU (byte-for-byte what Talkdesk streams, so no transcoding) plus RFC 4733 DTMF. */
export interface SdpOffer {
  /** IPv4 address the bot sends RTP to; also the o= and session-level c= address. */
  address: string;
  port: number;
  /** o= session id; a random one when omitted. Digits only. */
  sessionId?: string;
  dtmfPayloadType?: number;
  /**
   * SDES-SRTP (RFC 4568). 'required': `RTP/SAVP`, so a bot without SRTP must refuse the stream. 'optional':
   * best-effort SRTP, `RTP/AVP` carrying a=crypto: the common practice, which plain-RTP peers ignore and SDES peers
   * take up. The standard way to offer both (SDP capability negotiation, RFC 5939) is not done.
   */
  srtp?: { mode: 'optional' | 'required'; /** the a=crypto value, see formatCrypto() */ crypto: string };
}

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** The bot's media as its answer describes it. `direction` is from the bot's side: 'sendonly' = it only sends. */
export interface RemoteMedia {
  address: string;
  port: number;
  audioPayloadType: 0;
  /** telephone-event PT from the answer; the bot's own number is the one it will send (sipp uses 96 or 101). */
  dtmfPayloadType?: number;
  direction: MediaDirection;
  /** The m= transport was RTP/SAVP: the bot speaks SRTP only. Absent for RTP/AVP. */
  savp?: true;
  /** a=crypto values of the audio stream, in order (absent when none); see chooseCrypto(). */
  crypto?: string[];
  /** RFC 3605 a=rtcp: the port the bot takes RTCP on, when not the RTP port + 1 (at the c= address: see parseAnswer) */
  rtcpPort?: number;
  /** RFC 5761 a=rtcp-mux in the answer: RTCP shares the RTP ports both ways (we offer it) */
  rtcpMux?: true;
  /** Set by the call, not by parseAnswer: SRTP keys agreed for this stream. Absent = plain RTP. */
  srtp?: SrtpKeys;
}

export type SdpResult = { ok: true; value: RemoteMedia } | { ok: false; error: string };

const DEFAULT_DTMF_PT = 101;
/** RFC 3264 §8.4: the pre-RFC 3264 way to put a stream on hold. */
export const HOLD_ADDRESS = '0.0.0.0';
const DIRECTIONS: ReadonlySet<string> = new Set<MediaDirection>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

/**
 * The offer, CRLF-terminated. c= is at session level with a real address because sipp reads only the first
 * `c=IN IP4` line and ignores media-level ones (sip-notes §7). Events 0-16 = digits, *, #, A-D and flash.
 * Throws RangeError on arguments no peer could use: that is a configuration bug, not bad input.
 */
export function buildOffer(o: SdpOffer): string {
  const dtmfPt = o.dtmfPayloadType ?? DEFAULT_DTMF_PT;
  if (!isIPv4(o.address) || o.address === HOLD_ADDRESS) {
    throw new RangeError(`buildOffer: address must be a routable numeric IPv4 address, got "${o.address}"`);
  }
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new RangeError(`buildOffer: bad port ${o.port}`);
  if (!Number.isInteger(dtmfPt) || dtmfPt < 96 || dtmfPt > 127) {
    throw new RangeError(`buildOffer: dtmfPayloadType must be a dynamic payload type (96-127), got ${dtmfPt}`);
  }
  const sessionId = o.sessionId ?? String(randomInt(1, 2 ** 47));
  if (!/^\d+$/.test(sessionId)) throw new RangeError(`buildOffer: sessionId must be digits, got "${sessionId}"`);
  if (o.srtp !== undefined && /[\r\n]/.test(o.srtp.crypto)) throw new RangeError('buildOffer: crypto must be one line');
  return [
    'v=0',
    `o=- ${sessionId} ${sessionId} IN IP4 ${o.address}`,
    's=-',
    `c=IN IP4 ${o.address}`,
    't=0 0',
    `m=audio ${o.port} ${o.srtp?.mode === 'required' ? 'RTP/SAVP' : 'RTP/AVP'} 0 ${dtmfPt}`,
    'a=rtpmap:0 PCMU/8000',
    `a=rtpmap:${dtmfPt} telephone-event/8000`,
    `a=fmtp:${dtmfPt} 0-16`,
    'a=ptime:20',
    'a=sendrecv',
    // RFC 5761: RTCP on the RTP port if the bot agrees; else on the next port, where the pool has bound it
    'a=rtcp-mux',
    ...(o.srtp ? [`a=crypto:${o.srtp.crypto}`] : []),
    '',
  ].join('\r\n');
}

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Reads the first m=audio of an answer (RFC 4566 / RFC 3264), or of a bot's re-INVITE offer. Never throws. Its
 * a=crypto values are returned unjudged: whether SRTP is on is the call's decision (negotiateSrtp()).
 *
 * c=0.0.0.0 is the old (RFC 2543) way to put a call on hold, still sent by some PBXs in re-INVITEs (RFC 3264 §8.4):
 * it is accepted as `direction: 'inactive'` with address 0.0.0.0, so a re-INVITE pauses media instead of ending the
 * call. Hostnames in c= are refused rather than resolved: RTP is sent to numeric IPs only.
 */
export function parseAnswer(sdp: string): SdpResult {
  if (typeof sdp !== 'string') return fail('answer SDP is not a string');
  const lines = sdp.split(/\r?\n/);
  let i = 0;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  if (lines[i]?.trim() !== 'v=0') return fail('answer is not SDP: it does not start with v=0');

  let sessionConn: string | undefined;
  let sessionDir: MediaDirection | undefined;
  let mediaConn: string | undefined;
  let mediaDir: MediaDirection | undefined;
  let mline: string | undefined;
  const rtpmaps = new Map<string, string>();
  const crypto: string[] = [];
  let rtcp: string | undefined;
  let rtcpMux = false;
  let section: 'session' | 'audio' | 'other' = 'session';

  for (; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (line === '') continue;
    if (!/^[a-z]=/.test(line)) return fail(`malformed SDP line ${i + 1}: ${JSON.stringify(line.slice(0, 60))}`);
    const type = line[0];
    const value = line.slice(2);
    if (type === 'm') {
      if (mline !== undefined) break; // only the first audio stream is used
      if (value.startsWith('audio ')) {
        mline = value;
        section = 'audio';
      } else {
        section = 'other';
      }
      continue;
    }
    if (section === 'other') continue;
    if (type === 'c') {
      if (section === 'session') sessionConn = value;
      else mediaConn = value;
    } else if (type === 'a') {
      if (DIRECTIONS.has(value)) {
        if (section === 'session') sessionDir = value as MediaDirection;
        else mediaDir = value as MediaDirection;
      } else if (section === 'audio' && value.startsWith('rtpmap:')) {
        const m = /^rtpmap:(\d+) +(.+)$/.exec(value);
        if (m !== null && !rtpmaps.has(m[1]!)) rtpmaps.set(m[1]!, m[2]!.trim().toLowerCase());
      } else if (section === 'audio' && value.startsWith('crypto:')) {
        // RFC 4568 §4: a media-level attribute only; a session-level one is ignored.
        crypto.push(value.slice('crypto:'.length));
      } else if (section === 'audio' && value === 'rtcp-mux') {
        rtcpMux = true;
      } else if (section === 'audio' && value.startsWith('rtcp:')) {
        rtcp = value.slice('rtcp:'.length);
      }
    }
  }

  if (mline === undefined) return fail('answer has no m=audio line');
  const m = parseMediaLine(mline);
  if (!m.ok) return m;
  const { port, formats, savp } = m.value;
  if (port === 0) return fail('bot rejected the audio stream (m=audio port 0)');
  if (!formats.includes('0')) return fail(`answer has no PCMU (payload type 0); formats: ${formats.join(' ')}`);

  const conn = mediaConn ?? sessionConn;
  if (conn === undefined) return fail('answer has no c= line for the audio stream');
  const addr = parseConnection(conn);
  if (!addr.ok) return addr;

  let dtmfPayloadType: number | undefined;
  for (const pt of formats) {
    if (rtpmaps.get(pt) === 'telephone-event/8000') {
      dtmfPayloadType = Number(pt);
      break;
    }
  }

  const direction = addr.value === HOLD_ADDRESS ? 'inactive' : (mediaDir ?? sessionDir ?? 'sendrecv');
  const value: RemoteMedia = { address: addr.value, port, audioPayloadType: 0, direction };
  if (dtmfPayloadType !== undefined) value.dtmfPayloadType = dtmfPayloadType;
  if (savp) value.savp = true;
  if (crypto.length > 0) value.crypto = crypto;
  if (rtcpMux) value.rtcpMux = true;
  else {
    const rtcpPort = rtcp === undefined ? undefined : rtcpPortOf(rtcp, addr.value);
    if (rtcpPort !== undefined) value.rtcpPort = rtcpPort;
  }
  return { ok: true, value };
}

/** `audio <port>[/<count>] <proto> <fmt> ...` */
function parseMediaLine(value: string): Parsed<{ port: number; formats: string[]; savp: boolean }> {
  const parts = value.split(/ +/);
  if (parts.length < 4) return fail(`malformed m= line: "m=${value}"`);
  const portText = parts[1]!.split('/')[0]!;
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port <= 65535)) return fail(`malformed port in "m=${value}"`);
  if (parts[2] !== 'RTP/AVP' && parts[2] !== 'RTP/SAVP') {
    return fail(`unsupported audio transport ${parts[2]} (only RTP/AVP and RTP/SAVP: no AVPF, no DTLS)`);
  }
  const formats = parts.slice(3);
  if (!formats.every((f) => /^\d{1,3}$/.test(f))) return fail(`malformed formats in "m=${value}"`);
  return { ok: true, value: { port, formats, savp: parts[2] === 'RTP/SAVP' } };
}

/**
 * RFC 3605 `<port> [IN IP4 <address>]`: the port, when RTCP goes to the stream's own address. RTCP is sent only where
 * the bot's RTP comes from (the answer's c=), so another address, like a malformed value, leaves the default port
 * (undefined): reports are not worth failing a call over.
 */
function rtcpPortOf(value: string, mediaAddress: string): number | undefined {
  const m = /^(\d{1,5})(?: +IN +IP4 +(\S+))?$/.exec(value.trim());
  if (m === null || Number(m[1]) < 1 || Number(m[1]) > 65535) return undefined;
  return m[2] === undefined || m[2] === mediaAddress ? Number(m[1]) : undefined;
}

/** `IN IP4 <address>[/<ttl>]` */
function parseConnection(value: string): Parsed<string> {
  const parts = value.split(/ +/);
  if (parts.length !== 3 || parts[0] !== 'IN') return fail(`malformed c= line: "c=${value}"`);
  if (parts[1] === 'IP6') return fail(`IPv6 media address ${parts[2]} is not supported`);
  if (parts[1] !== 'IP4') return fail(`unknown address type in "c=${value}"`);
  const address = parts[2]!.split('/')[0]!;
  if (!isIPv4(address)) return fail(`c= address "${address}" is not a numeric IPv4 address`);
  return { ok: true, value: address };
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
