import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LegDelegate } from '../../../../plugin/sip/backend.js';
import type { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import { parseSipMessage } from '../../../../plugin/sip/embedded/message.js';
import { loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, FakeUas, testLog } from './fake-uas.js';
import { INVALID, RFC2543_RESPONSE, VALID } from './torture-messages.js';

// RFC 4475's torture tests as far as a UAC meets them: the parser reads the valid ones right and refuses the invalid
// ones with a reason (never a throw), and a live backend fed all of them, plus responses nobody asked for, keeps its
// call working and leaks nothing.

const parse = (raw: string) => parseSipMessage(Buffer.from(raw, 'latin1'));

function parsed(raw: string) {
  const r = parse(raw);
  if (!r.ok) throw new Error(`expected it to parse, got: ${r.reason}`);
  return r.message;
}

describe('RFC 4475 valid messages parse right', () => {
  it('wsinv: folded lines, tabs, odd case, spaces around ":" and "=", compact names, two Vias folded into one', () => {
    const m = parsed(VALID.wsinv);
    expect(m.sip.method).toBe('INVITE');
    expect(m.callId).toBe('wsinv.ndaksdj@192.0.2.1');
    expect(m.cseq).toEqual({ seq: 9, method: 'INVITE' }); // 0009, folded onto the next line
    expect(m.via).toMatchObject({ transport: 'UDP', host: '192.0.2.2' });
    expect(m.fromTag).toBe('98asjd8');
    expect(m.toTag).toBe('1918181833n');
    expect(m.sip.body).toContain('m=audio 49217 RTP/AVP 0 12');
  });

  it('esc01 / escnull: %-escapes stay escaped (URIs are compared, never decoded); %00 is three characters', () => {
    expect(parsed(VALID.esc01).sip.uri).toBe('sip:sips%3Auser%40example.com@example.net');
    const m = parsed(VALID.escnull);
    expect(m.sip.get('to')).toBe('sip:null-%00-null@example.com');
    expect(m.fromTag).toBe('839923423');
  });

  it('lwsdisp, semiuri, transports, unkscm: no space before <, ; in a user part, unknown Via transports and URI schemes', () => {
    expect(parsed(VALID.lwsdisp).fromTag).toBe('323');
    expect(parsed(VALID.semiuri).sip.uri).toBe('sip:user;par=u%40example.net@example.com');
    expect(parsed(VALID.transports).via).toMatchObject({ transport: 'UDP', host: 't1.example.com' });
    expect(parsed(VALID.unkscm).sip.uri).toBe('nobodyKnowsThisScheme:totallyopaquecontent');
  });

  it('longreq: long header values, tags, branch and 31 Vias', () => {
    const m = parsed(VALID.longreq);
    expect(m.branch).toBe(`z9hG4bK${'longbranch'.repeat(30)}`);
    expect(m.fromTag).toBe(`12${'982'.repeat(30)}424`);
    expect(m.sip.get('x-long')).toHaveLength(2_000);
  });

  it('intmeth: a method of every token character, digits included, matching its CSeq', () => {
    const m = parsed(VALID.intmeth);
    expect(m.sip.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    expect(m.cseq.method).toBe(m.sip.method);
    expect(m.branch).toBe("z9hG4bK-.!%66*_+`'~");
  });

  it('unreason / noreason / mpart01: UTF-8 and empty reason phrases, a multipart body counted in bytes', () => {
    expect(parsed(VALID.unreason)).toMatchObject({ toTag: '2229', cseq: { seq: 35, method: 'INVITE' } });
    expect(parsed(VALID.unreason).sip.status).toBe(200);
    expect(parsed(VALID.noreason).sip.status).toBe(100);
    expect(parsed(VALID.mpart01).sip.body).toContain('--boundary42--');
  });

  it('an RFC 2543 branch (no magic cookie) is readable; it can match none of our transactions', () => {
    expect(parsed(RFC2543_RESPONSE).branch).toBe('1234');
  });

  it('a quoted display name with a comma is one To, not two', () => {
    expect(parsed(VALID.quotedcomma)).toMatchObject({ toTag: 'theirs', fromTag: 'ours', cseq: { seq: 2, method: 'BYE' } });
  });
});

describe('RFC 4475 invalid messages are refused with a reason, never a throw', () => {
  const badvers2 = INVALID.badvers.replace('Via:     SIP/7.0/UDP', 'Via: SIP/2.0/UDP');
  it.each([
    ...Object.entries(INVALID),
    ['badvers (with a SIP/2.0 Via)', badvers2],
    ['status 700', VALID.noreason.replace('SIP/2.0 100 ', 'SIP/2.0 700 Nope')],
    ['a second From', VALID.lwsdisp.replace('Max-Forwards: 70', 'From: <sip:x@example.com>;tag=9')],
  ])('%s', (_name, raw) => {
    const r = parse(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/\w/);
  });

  it('names what is wrong', () => {
    const reason = (raw: string) => {
      const r = parse(raw);
      return r.ok ? 'parsed' : r.reason;
    };
    expect(reason(INVALID.clerr)).toMatch(/^body shorter \(\d+ bytes\) than Content-Length 9999$/);
    expect(reason(INVALID.scalarlg)).toBe('unreadable CSeq');
    expect(reason(INVALID.negcseq)).toBe('unreadable CSeq');
    expect(reason(INVALID.bigcode)).toBe('status line not SIP/2.0 with a code 100-699');
    expect(reason(badvers2)).toBe('request line not SIP/2.0');
    expect(reason(INVALID.quotbal)).toBe('unbalanced quotes in to header');
    expect(reason(INVALID.multicallid)).toBe('more than one Call-ID');
    expect(reason(INVALID.insuf)).toBe('missing call-id header');
    expect(reason(INVALID.mismatch01)).toBe('CSeq method INVITE does not match request method OPTIONS');
  });
});

// ---- the same against a live backend with a call up ----

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function liveCall() {
  const backend = loopbackBackend({ timers: { T1: 10, T2: 40, T4: 40, D: 80 } });
  await backend.start();
  const uas = await FakeUas.start();
  cleanups.push(
    () => backend.stop(),
    () => uas.close(),
  );
  const delegate = { onProgress: vi.fn(), onBye: vi.fn(), onRemoteSdp: vi.fn(), onInfo: vi.fn(), onRefer: vi.fn(), onEnded: vi.fn() } satisfies LegDelegate;
  const outgoing = backend.invite({ requestUri: uas.uri, fromUser: 'talkdesk', headers: {}, sdp: sdpOffer(20000), log: testLog, delegate });
  const invite = await uas.next('INVITE');
  return { backend, uas, delegate, outgoing, invite };
}

/** a response as the bot would send it, for a transaction the backend never started */
function strayResponse(status: number, method: string, callId: string): string {
  return [
    `SIP/2.0 ${status} Whatever`,
    `Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'From: <sip:talkdesk@127.0.0.1>;tag=x',
    'To: <sip:bot@127.0.0.1>;tag=y',
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** our BYE reaches the bot, which answers 200; the hangup then resolves */
async function byeAnswered(uas: FakeUas, hangup: Promise<void>): Promise<void> {
  uas.reply(await uas.next('BYE'), 200, 'OK');
  await hangup;
}

async function expectNoLeaks(backend: EmbeddedSipBackend): Promise<void> {
  await vi.waitFor(() => expect(backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 }), { timeout: 3000, interval: 20 });
}

describe('a live backend under torture', () => {
  it('duplicate and out-of-order responses: a late 180 and a 486 after the 200 change nothing; 200 retransmissions are re-ACKed', async () => {
    const s = await liveCall();
    s.uas.reply(s.invite, 180, 'Ringing');
    const ok = s.uas.reply(s.invite, 200, 'OK', { body: BOT_SDP });
    const ack = await s.uas.next('ACK');
    const leg = await s.outgoing.answered;
    s.uas.reply(s.invite, 180, 'Ringing'); // out of order
    s.uas.reply(s.invite, 486, 'Busy Here'); // a final after the final
    s.uas.send(ok, s.invite.message.via.port!);
    s.uas.send(ok, s.invite.message.via.port!);
    await vi.waitFor(() => expect(s.uas.count('ACK')).toBe(3));
    for (const again of s.uas.received.filter((r) => r.message.sip.method === 'ACK')) expect(again.raw).toBe(ack.raw);
    expect(s.delegate.onProgress.mock.calls).toEqual([[180]]);
    expect(s.delegate.onEnded).not.toHaveBeenCalled();
    // the leg still works both ways
    s.uas.requestInDialog(s.invite, 'OPTIONS');
    await s.uas.next('200');
    await byeAnswered(s.uas, leg.hangup({}));
    await expectNoLeaks(s.backend);
  });

  it('every torture message, stray responses and garbage on the SIP port: answered or dropped, the call unharmed, nothing leaks', async () => {
    const s = await liveCall();
    s.uas.reply(s.invite, 200, 'OK', { body: BOT_SDP });
    await s.uas.next('ACK');
    const leg = await s.outgoing.answered;
    const port = s.invite.message.via.port!;
    const before = s.uas.received.length;

    // responses nobody asked for, one in the call's own Call-ID: dropped, no ACK, no delegate
    for (const [status, method] of [[200, 'INVITE'], [486, 'INVITE'], [200, 'BYE'], [100, 'OPTIONS']] as const) {
      s.uas.send(strayResponse(status, method, s.invite.message.callId), port);
      s.uas.send(strayResponse(status, method, 'nobody@127.0.0.1'), port);
    }
    for (const raw of [...Object.values(VALID), ...Object.values(INVALID), RFC2543_RESPONSE]) s.uas.send(Buffer.from(raw, 'latin1'), port);
    for (const junk of [Buffer.alloc(0), randomBytes(1400), randomBytes(65_000), Buffer.from('\r\n\r\n'), Buffer.from('SIP/2.0 200 OK\r\n\r\n')]) {
      s.uas.send(junk, port);
    }

    // a sentinel in the dialog: everything before it has been handled (UDP on loopback keeps order)
    s.uas.requestInDialog(s.invite, 'OPTIONS');
    await s.uas.next('200');
    const answered = s.uas.received.slice(before).map((r) => r.message.sip.status ?? r.message.sip.method);
    // no ACK for any stray response, and nothing else came back here but the sentinel's 200 (the torture requests are
    // answered to their own Via sent-by, none of which is this socket)
    expect(answered).toEqual([200]);
    expect(s.delegate.onBye).not.toHaveBeenCalled();
    expect(s.delegate.onEnded).not.toHaveBeenCalled();
    expect(s.delegate.onInfo).not.toHaveBeenCalled();

    await byeAnswered(s.uas, leg.hangup({}));
    await expectNoLeaks(s.backend);
  });
});
