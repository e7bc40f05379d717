import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FRAME_BYTES, frames, speechUlaw } from '../support/audio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway, type LogLine } from '../support/gateway.js';
import { gatewayPerTest } from './gateway-per-test.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot, type SippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, EXAMPLE_BOT, packetRate, splitBotAudio } from '../support/talkdesk-call.js';

// Real calls that something tries to knock over: the bot moving its media, Talkdesk sending junk or too much, or
// nothing at all, or from an account that may not stream. Same harness as calls.test.ts.
const bot = botPorts(7);
/** every gateway of this file: its bot, and RTP ports no other file uses */
const GATEWAY = { CCAI_SIP_PORT: String(bot.sipPort), RTP_PORT_MIN: '32200', RTP_PORT_MAX: '32298' };
const STREAM_SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';

const startGateway = gatewayPerTest();

interface BotCall {
  sipp: SippBot;
  gw: Gateway;
  /** the Talkdesk side, already past `connected` + `start` */
  td: FakeTalkdesk;
}

/** A sipp bot in slot 7, the gateway (with `env` overrides), and one Talkdesk stream dialled into it. */
async function callBot(opts: {
  scenario: string;
  rtpEcho?: boolean;
  extraArgs?: string[];
  env?: Record<string, string>;
  onLog?: (line: LogLine) => void;
}): Promise<BotCall> {
  const sipp = await startSippBot({ scenario: opts.scenario, ...bot, rtpEcho: opts.rtpEcho, extraArgs: opts.extraArgs });
  const gw = await startGateway({ ...GATEWAY, ...opts.env }, opts.onLog);
  const td = await dialGateway(gw.app.port);
  return { sipp, gw, td };
}

/** A Talkdesk socket past the (authenticated) upgrade that has sent nothing yet: no `connected`, no `start`. */
function openStream(port: number): Promise<FakeTalkdesk> {
  return FakeTalkdesk.connect(
    talkdeskUrl({
      port,
      sipuri: '+17345551234',
      token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret),
      botId: EXAMPLE_BOT.botId,
      accountId: '0123456789abcdef01234567',
    }),
  );
}

/** The bot hung up with a plain BYE: stop{ok}, sipp ran to the end, every TTS frame arrived bit-exact, all released. */
async function expectOkCall({ sipp, gw, td }: BotCall): Promise<void> {
  const { stop } = await td.waitForStop(20_000);
  expect(stop.stop).toMatchObject({ command: 'ok', ringGroup: null, callSid: 'CA-test-call-1' });
  expectSippSuccess(await sipp.done);
  const audio = splitBotAudio(td.received, sipp.ttsUlaw);
  expect(audio.ttsFrames).toBe(sipp.ttsUlaw.length / FRAME_BYTES);
  expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
  await td.closed;
  await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);
  expect(gw.app.ports.inUse).toBe(0);
}

interface Datagram {
  at: number;
  msg: Buffer;
}

/** A UDP socket on 127.0.0.1 (`port` 0: any free one) that records every datagram with its arrival time. */
async function udpRecorder(port: number): Promise<{ socket: Socket; port: number; datagrams: Datagram[] }> {
  const socket = createSocket('udp4');
  socket.bind(port, '127.0.0.1');
  await once(socket, 'listening');
  const datagrams: Datagram[] = [];
  socket.on('message', (msg) => datagrams.push({ at: performance.now(), msg }));
  return { socket, port: socket.address().port, datagrams };
}

function endedCauses(gw: Gateway): unknown[] {
  return linesWith(gw.logs, 'call ended').map((l) => l.cause);
}

/** A `media` frame as Talkdesk sends it, with any payload text and track. */
function mediaJson(payload: string, track = 'inbound', streamSid = STREAM_SID): string {
  return JSON.stringify({
    event: 'media',
    sequenceNumber: '90000',
    media: { track, chunk: '90000', timestamp: '0', payload },
    streamSid,
  });
}

/** Does any audio that reached Talkdesk contain this whole 20 ms frame? (The bot echoes what it gets: -rtp_echo.) */
function echoedBack(td: FakeTalkdesk, frame: Buffer): boolean {
  return Buffer.concat(td.mediaPayloads()).includes(frame);
}

describe('robustness of a real call', () => {
  it('a re-INVITE from the bot moves our RTP to its new address', async () => {
    const moved = await udpRecorder(0);
    try {
      let movedAt = Number.NaN;
      const call = await callBot({
        scenario: 'uas_reinvite.xml',
        // the bot echoes our RTP while it still gets it, so we can also see when it stops getting it
        rtpEcho: true,
        extraArgs: ['-key', 'new_rtp_port', String(moved.port)],
        onLog: (line) => {
          if (line.msg === 'bot moved its media') movedAt = performance.now();
        },
      });
      const { sipp, gw, td } = call;
      const caller = await speechUlaw(CALLER_TEXT);
      void td.streamAudio(caller);

      const { stop } = await td.waitForStop(20_000);
      expect(stop.stop).toMatchObject({ command: 'ok', ringGroup: null });
      const result = await sipp.done;
      expectSippSuccess(result);
      await td.closed;

      // the bot's new SDP was taken, and our 200 answered it with our (unchanged) SDP: sipp checked both
      expect(linesWith(gw.logs, 'bot moved its media').map((l) => l.remote)).toEqual([`127.0.0.1:${moved.port}`]);
      const offeredPort = /^m=audio (\d+) /m.exec(result.messages)?.[1];
      expect(offeredPort).toBeDefined();
      // sipp's header values keep the space after the colon
      expect(result.logs).toMatch(new RegExp(`^re-INVITE answered: Content-Type +application/sdp m=audio port ${offeredPort} `, 'm'));

      // nothing reached the new address before the re-INVITE; then our RTP did: PCMU, 172 bytes, 50 a second
      const rtp = moved.datagrams;
      expect(Number.isFinite(movedAt)).toBe(true);
      expect(rtp.length).toBeGreaterThan(60); // 1.5 s between the re-INVITE and the BYE
      expect(rtp.length).toBeLessThan(90);
      expect(rtp[0]!.at).toBeGreaterThanOrEqual(movedAt);
      expect(rtp[0]!.at - movedAt).toBeLessThan(100);
      for (const { msg } of rtp) {
        expect(msg.length).toBe(12 + FRAME_BYTES);
        expect(msg[0]).toBe(0x80); // V=2, no padding, extension or CSRCs
        expect(msg[1]! & 0x7f).toBe(0); // PT 0
      }
      const rate = packetRate(rtp.map((d) => d.at));
      expect(rate).toBeGreaterThan(48);
      expect(rate).toBeLessThan(52);
      // still one RTP stream: same SSRC, sequence and timestamp carry on without a gap, no new talkspurt marker
      const ssrcs = new Set(rtp.map(({ msg }) => msg.readUInt32BE(8)));
      expect(ssrcs.size).toBe(1);
      rtp.forEach(({ msg }, i) => {
        expect(msg[1]! & 0x80).toBe(0);
        if (i === 0) return;
        const prev = rtp[i - 1]!.msg;
        expect(msg.readUInt16BE(2)).toBe((prev.readUInt16BE(2) + 1) & 0xffff);
        expect(msg.readUInt32BE(4)).toBe((prev.readUInt32BE(4) + 160) >>> 0);
      });
      // and it carried the caller's speech, frame for frame: the playout buffer loses none of it
      const callerFrames = new Set(frames(caller).map((f) => f.toString('hex')));
      const speech = rtp.filter(({ msg }) => callerFrames.has(msg.subarray(12).toString('hex')));
      // the summary is logged once the end's last step is done, which may be after Talkdesk's socket closed
      await expect.poll(() => linesWith(gw.logs, 'call ended').length).toBe(1);
      const ended = linesWith(gw.logs, 'call ended')[0] as unknown as { rtp: { callerSpeechLostFrames: number } };
      expect(ended.rtp.callerSpeechLostFrames).toBe(0);
      expect(speech.length).toBeGreaterThan(30);

      // the old address got our RTP until the re-INVITE (echoed back to Talkdesk), and nothing after it
      const media = td.received.filter((r) => r.msg.event === 'media');
      expect(media.filter((r) => r.at < movedAt).length).toBeGreaterThan(30);
      expect(media.filter((r) => r.at > movedAt + 100)).toEqual([]);
      // sending stopped with the call
      const count = rtp.length;
      await sleep(200);
      expect(moved.datagrams.length).toBe(count);
      expect(endedCauses(gw)).toEqual(['bot-bye']);
    } finally {
      moved.socket.close();
    }
  });

  it('garbage from Talkdesk never disturbs the call', async () => {
    // room in the playout buffer for the extra frames below, so none is dropped there for being one too many
    const call = await callBot({ scenario: 'uas_ok.xml', rtpEcho: true, env: { MAX_PLAYOUT_MS: '400' } });
    const { gw, td } = call;
    const callerAudio = td.streamAudio(await speechUlaw(CALLER_TEXT));
    await td.waitFor((r) => r.msg.event === 'media', 5_000, 'bot audio');

    // frames that must never reach the bot, each with a pattern that would show up in its echo if one did
    const outbound = Buffer.alloc(FRAME_BYTES, 0x55);
    const binary = Buffer.alloc(FRAME_BYTES, 0x66);
    const badBase64 = Buffer.alloc(FRAME_BYTES, 0x33).toString('base64');
    // Buffer.from(…, 'base64') would skip the "!" and decode the 0x33 frame: only a strict check refuses it
    const notBase64 = `${badBase64.slice(0, 100)}!${badBase64.slice(100)}`;
    const junk: Array<string | Buffer> = [
      'this is not JSON',
      '{"event":"media","media":{"payload":"AAAA',
      '{}',
      '{"event":"keepalive"}',
      binary,
      mediaJson(notBase64),
      JSON.stringify({
        event: 'start',
        sequenceNumber: '2',
        start: {
          streamSid: 'MZ-second-start',
          accountSid: 'td-account-2',
          callSid: 'CA-second-start',
          tracks: ['inbound'],
          customParameters: { interaction_id: 'interaction-2', account_id: 'td-account-2' },
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
        streamSid: 'MZ-second-start',
      }),
      mediaJson(outbound.toString('base64'), 'outbound'),
    ];
    for (const frame of junk) {
      if (Buffer.isBuffer(frame)) td.sendBinary(frame);
      else td.sendRaw(frame);
      await sleep(20);
    }
    // the control: an inbound frame sent the same way does reach the bot and comes back
    const control = Buffer.alloc(FRAME_BYTES, 0x2a);
    td.sendRaw(mediaJson(control.toString('base64')));

    await expectOkCall(call);
    await callerAudio;
    expect(echoedBack(td, control)).toBe(true);
    expect(echoedBack(td, outbound)).toBe(false);
    expect(echoedBack(td, binary)).toBe(false);
    expect(echoedBack(td, Buffer.alloc(FRAME_BYTES, 0x33))).toBe(false);
    // the second start placed no second call (and, below, renamed nothing)
    expect(linesWith(gw.logs, 'second start frame ignored')).toHaveLength(1);
    expect((await call.sipp.done).messages.match(/^INVITE sip:/gm)).toHaveLength(1);

    // the operator sees the junk: a warning (at most one per 10 s per stream) and the counts in 'call ended'
    expect(linesWith(gw.logs, 'malformed frame ignored: not JSON')).toHaveLength(1);
    const [ended, ...more] = linesWith(gw.logs, 'call ended');
    expect(more).toEqual([]);
    // ignored: {}, the keep-alive, the binary frame, the second start and the outbound media
    expect(ended).toMatchObject({ cause: 'bot-bye', talkdesk: { malformed: 3, ignored: 5 }, rtp: { callerSpeechLostFrames: 0 } });
    // every frame we sent (media, mark, stop) still named the first stream, not the second start's
    expect(new Set(td.received.map((r) => r.msg.streamSid))).toEqual(new Set([STREAM_SID]));
  });

  it('an oversized frame closes only that socket with 1009', async () => {
    const a = await callBot({ scenario: 'uas_ok.xml', env: { MAX_FRAME_BYTES: '4096' } });
    const { gw } = a;
    void a.td.streamAudio(await speechUlaw(CALLER_TEXT));
    await a.td.waitFor((r) => r.msg.event === 'media', 5_000, 'bot audio');

    const b = await openStream(gw.app.port);
    b.sendConnected();
    await expect.poll(() => gw.app.registry.size, { timeout: 2_000 }).toBe(2);
    const oversized = mediaJson('A'.repeat(4_200));
    expect(Buffer.byteLength(oversized)).toBeGreaterThan(4096);
    b.sendRaw(oversized);

    const closedB = await b.closed;
    expect(closedB.code).toBe(1009);
    expect(b.received.filter((r) => r.msg.event === 'stop')).toEqual([]);
    // B is gone at once, while A's call is still up
    await expect.poll(() => gw.app.registry.size, { timeout: 2_000 }).toBe(1);
    expect(a.td.received.filter((r) => r.msg.event === 'stop')).toEqual([]);
    // the operator sees why: ws's error names the limit (the close code logged is ws's 1006, as ws stops reading
    // the socket once a frame is too big and so never sees the client's close frame)
    const [tooBig, ...otherErrors] = linesWith(gw.logs, 'talkdesk socket error');
    expect(otherErrors).toEqual([]);
    expect(tooBig).toMatchObject({ err: 'Max payload size exceeded' });
    expect(linesWith(gw.logs, 'call ended')).toMatchObject([{ call: tooBig!.call, cause: 'talkdesk-closed' }]);

    await expectOkCall(a);
    expect(new Set(a.td.received.map((r) => r.msg.streamSid))).toEqual(new Set([STREAM_SID]));
    expect((await a.sipp.done).messages.match(/^INVITE sip:/gm)).toHaveLength(1);
    expect(endedCauses(gw)).toEqual(['talkdesk-closed', 'bot-bye']);
  });

  it('a socket that never sends start is ended with stop{error} after START_TIMEOUT_MS', async () => {
    const ccai = await udpRecorder(bot.sipPort);
    try {
      const gw = await startGateway({ ...GATEWAY, START_TIMEOUT_MS: '500' });
      const td = await openStream(gw.app.port);
      const t0 = performance.now();
      td.sendConnected();
      td.sendRaw('{"event":"keepalive"}');

      const { stop, at } = await td.waitForStop(3_000);
      expect(stop.stop).toMatchObject({ command: 'error', ringGroup: null });
      expect(at - t0).toBeGreaterThan(450);
      expect(at - t0).toBeLessThan(1_500);
      // Talkdesk got CLOSE_WAIT_MS to hang up first; it did not, so the gateway closed normally
      expect((await td.closed).code).toBe(1000);
      await expect.poll(() => gw.app.registry.size, { timeout: 2_000 }).toBe(0);
      expect(linesWith(gw.logs, 'call ended')).toMatchObject([{ outcome: 'error', cause: 'start-timeout' }]);
      await sleep(200);
      expect(ccai.datagrams).toEqual([]);
    } finally {
      ccai.socket.close();
    }
  });

  it('a stream from an account not on TALKDESK_ACCOUNT_ALLOWLIST gets stop{error} and no INVITE', async () => {
    // a busy bot: the allowed stream's INVITE gets a 486, which ends it quickly
    const sipp = await startSippBot({ scenario: 'uas_busy.xml', ...bot });
    const gw = await startGateway({ ...GATEWAY, TALKDESK_ACCOUNT_ALLOWLIST: 'other-account' });

    const refused = await dialGateway(gw.app.port); // start.accountSid td-account-1
    const { stop } = await refused.waitForStop(3_000);
    expect(stop.stop).toMatchObject({ command: 'error', accountSid: 'td-account-1', callSid: 'CA-test-call-1' });
    await refused.closed;
    await expect.poll(() => gw.app.registry.size, { timeout: 2_000 }).toBe(0);
    expect(linesWith(gw.logs, 'call ended')).toMatchObject([{ outcome: 'rejected', cause: 'account-not-allowed' }]);

    // the control: the listed account is let through to the bot
    const allowed = await openStream(gw.app.port);
    allowed.sendConnected();
    allowed.sendStart({
      streamSid: 'MZ00000000000000000000000000000002',
      accountSid: 'other-account',
      callSid: 'CA-allowed',
      interactionId: 'interaction-43',
    });
    expect((await allowed.waitForStop(5_000)).stop.stop).toMatchObject({ command: 'error', callSid: 'CA-allowed' });
    await allowed.closed;
    await expect.poll(() => gw.app.registry.size, { timeout: 2_000 }).toBe(0);
    expect(endedCauses(gw)).toEqual(['account-not-allowed', 'sip-486']);

    // sipp saw exactly one INVITE, the allowed stream's: the refused one never reached SIP
    const result = await sipp.done;
    expectSippSuccess(result);
    expect(result.messages.match(/^INVITE sip:/gm)).toHaveLength(1);
    expect(result.messages).toMatch(/^X-Talkdesk-Account-Sid: other-account\r?$/m);
    expect(result.messages).not.toContain('td-account-1');
  });
});
