import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FRAME_BYTES, frames, speechUlaw } from '../support/audio.js';
import type { FakeTalkdesk } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { botSdp, NodeBot, offeredPort } from '../support/node-bot.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, splitBotAudio } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Early media (RFC 3960): a bot that answers 183 Session Progress with SDP and greets the caller before its 200.
// The prompt must reach Talkdesk as it is played, bit-exact; the caller's audio goes to the bot only from the 200
// on, to wherever the 200 says. Same harness as calls.test.ts; a Node bot for what sipp cannot script.

const bot = botPorts(6);
const RTP_RANGE = { RTP_PORT_MIN: '31400', RTP_PORT_MAX: '31498' };
/** said by the caller once the bot has answered: its frames must reach the bot */
/** Spoken to nobody, during the bot's early prompt: shorter than it, so it is over before the 200. */
const BEFORE_ANSWER_TEXT = 'Hello, anyone there?';
const AFTER_ANSWER_TEXT = 'Yes, I can hear you now. My account number is four two.';

const startGateway = gatewayPerTest();

/** A UDP socket on 127.0.0.1 (any free port) recording every datagram with its arrival time. */
async function udpRecorder(): Promise<{ socket: Socket; port: number; datagrams: Array<{ at: number; msg: Buffer }> }> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const datagrams: Array<{ at: number; msg: Buffer }> = [];
  socket.on('message', (msg) => datagrams.push({ at: performance.now(), msg }));
  return { socket, port: socket.address().port, datagrams };
}

/** performance.now() when the gateway logged `msg` (its first such line) */
function loggedAt(times: Map<string, number>, msg: string): number {
  const at = times.get(msg);
  if (at === undefined) throw new Error(`the gateway never logged "${msg}"`);
  return at;
}

/** A gateway whose log lines' arrival times are kept, so media can be placed before or after the answer. */
async function timedGateway(env: Record<string, string> = {}): Promise<{ gw: Gateway; times: Map<string, number> }> {
  const times = new Map<string, number>();
  const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort), ...env }, (line) => {
    if (!times.has(line.msg)) times.set(line.msg, performance.now());
  });
  return { gw, times };
}

/** The stop frame carries its place among everything the gateway sent, counted from 1. */
function expectNumberedStop(td: FakeTalkdesk): void {
  const index = td.received.findIndex((r) => r.msg.event === 'stop');
  expect(index).toBeGreaterThan(0);
  expect(td.received[index]!.msg.sequenceNumber).toBe(String(index + 1));
}

describe('early media: the bot greets in a 183 before its 200', () => {
  it('sipp bot, 200 with the same SDP: the prompt reaches Talkdesk bit-exact, in order, before the answer; caller audio reaches the bot only after it', async () => {
    const sipp = await startSippBot({
      scenario: 'uas_early_media.xml',
      ...bot,
      rtpEcho: true,
      extraArgs: ['-key', 'answer_rtp_port', String(bot.mediaPort)],
    });
    const { gw, times } = await timedGateway();
    const td = await dialGateway(gw.app.port);
    const beforeAnswer = await speechUlaw(BEFORE_ANSWER_TEXT);
    const afterAnswer = await speechUlaw(AFTER_ANSWER_TEXT);
    void td.streamAudio(beforeAnswer); // spoken to nobody: the bot has not answered
    await expect.poll(() => times.has('bot answered'), { timeout: 15_000 }).toBe(true);
    void td.streamAudio(afterAnswer);

    const { stop } = await td.waitForStop(20_000);
    expect(stop.stop).toMatchObject({ command: 'ok', ringGroup: null });
    expectSippSuccess(await sipp.done);
    await td.closed;
    const answeredAt = loggedAt(times, 'bot answered');

    // every frame of the prompt, bit-exact and in order, and all of it before the 200
    const audio = splitBotAudio(td.received, sipp.ttsUlaw);
    expect(audio.ttsFrames).toBe(sipp.ttsUlaw.length / FRAME_BYTES);
    expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
    const media = td.received.filter((r) => r.msg.event === 'media');
    const lastTts = media.find((r) => Buffer.from(String((r.msg.media as { payload: string }).payload), 'base64').equals(frames(sipp.ttsUlaw).at(-1)!))!;
    expect(lastTts.at).toBeLessThan(answeredAt);
    // the bot echoes whatever reaches it: nothing came back before the 200, the caller's later speech did after it
    expect(audio.echoed.length).toBeGreaterThan(50);
    expect(Math.min(...audio.echoed)).toBeGreaterThan(answeredAt);
    const heard = Buffer.concat(td.mediaPayloads());
    const silent = (f: Buffer) => f.every((b) => b === 0xff || b === 0x7f);
    const spokenAfter = frames(afterAnswer).filter((f) => !silent(f));
    // the bot hangs up 1.5 s after its 200: most of that time's speech came back, frame for frame
    expect(spokenAfter.filter((f) => heard.includes(f)).length).toBeGreaterThan(40);
    expect(frames(beforeAnswer).filter((f) => !silent(f) && heard.includes(f))).toEqual([]);
    expect(linesWith(gw.logs, 'bot early media')).toMatchObject([{ status: 183, remote: `127.0.0.1:${bot.mediaPort}` }]);
    expectNumberedStop(td);
  });

  it('sipp bot, 200 with another media port: the prompt still reaches Talkdesk, and caller audio goes only to the 200’s port, from the 200 on', async () => {
    const moved = await udpRecorder();
    try {
      const sipp = await startSippBot({
        scenario: 'uas_early_media.xml',
        ...bot,
        rtpEcho: true,
        extraArgs: ['-key', 'answer_rtp_port', String(moved.port)],
      });
      const { gw, times } = await timedGateway();
      const td = await dialGateway(gw.app.port);
      void td.streamAudio(await speechUlaw(CALLER_TEXT));

      const { stop } = await td.waitForStop(25_000);
      expect(stop.stop).toMatchObject({ command: 'ok' });
      expectSippSuccess(await sipp.done);
      await td.closed;
      const answeredAt = loggedAt(times, 'bot answered');

      expect(linesWith(gw.logs, 'bot early media').map((l) => l.remote)).toEqual([`127.0.0.1:${bot.mediaPort}`]);
      expect(linesWith(gw.logs, 'bot answered').map((l) => l.remote)).toEqual([`127.0.0.1:${moved.port}`]);
      const audio = splitBotAudio(td.received, sipp.ttsUlaw);
      expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
      // the early address (sipp, echoing) never got a packet of ours: nothing came back
      expect(audio.echoed).toEqual([]);
      // the 200's address got our RTP from the answer on: 1.5 s of it until the BYE
      expect(moved.datagrams.length).toBeGreaterThan(60);
      expect(moved.datagrams[0]!.at).toBeGreaterThanOrEqual(answeredAt);
      for (const { msg } of moved.datagrams) expect(msg.length).toBe(12 + FRAME_BYTES);
      expectNumberedStop(td);
    } finally {
      moved.socket.close();
    }
  });

  it('Node bot: 1xx SDPs that do not parse are logged once and their RTP dropped; a later good 183 is heard; the 200 carries on', async () => {
    const nodeBot = await NodeBot.start();
    try {
      const { gw } = await timedGateway({ CCAI_SIP_PORT: String(nodeBot.sipPort) });
      const td = await dialGateway(gw.app.port);
      const invite = await nodeBot.uas.next('INVITE', 5_000);
      const ourPort = offeredPort(invite);
      for (let i = 0; i < 3; i++) nodeBot.uas.reply(invite, 183, 'Session Progress', { body: 'v=0\r\nm=audio sixteen RTP/AVP 0\r\n' });
      nodeBot.uas.reply(invite, 180, 'Ringing', { body: 'not an SDP at all' });
      await nodeBot.sendAudio(ourPort, 10, 0x11);
      expect(td.mediaPayloads()).toEqual([]);
      const refused = linesWith(gw.logs, 'early media SDP unusable: waiting for the answer (logged once a call)');
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ status: 183, level: 40 });
      // RTP that comes just before a usable answer is read is held and taken with it (media/rtp-session.ts,
      // EARLY_HOLD_MS 200): this audio is older, so it stays dropped
      await sleep(300);

      // then a usable 183, sent five times: its RTP is taken, and logged once
      for (let i = 0; i < 5; i++) nodeBot.uas.reply(invite, 183, 'Session Progress', { body: botSdp(nodeBot.rtpPort, 101) });
      await nodeBot.sendAudio(ourPort, 3, 0x21);
      await expect.poll(() => td.mediaPayloads().length).toBe(3);
      expect(linesWith(gw.logs, 'bot early media')).toHaveLength(1);

      nodeBot.answer(invite);
      await nodeBot.uas.next('ACK');
      await nodeBot.sendAudio(ourPort, 10, 0x22);
      await expect.poll(() => td.mediaPayloads().length).toBe(13);
      expect(td.mediaPayloads().map((p) => p.equals(Buffer.alloc(FRAME_BYTES, p[0]!)) && p[0])).toEqual([...Array(3).fill(0x21), ...Array(10).fill(0x22)]);
      await expect.poll(() => nodeBot.rtp.length).toBeGreaterThan(5); // the caller's frames flow from the 200 on

      td.sendStop();
      nodeBot.uas.reply(await nodeBot.uas.next('BYE', 5_000), 200, 'OK');
      await td.closed;
    } finally {
      await nodeBot.close();
    }
  });

  it('Node bot, SRTP required: a 183 answering plain RTP is refused, its RTP never reaches Talkdesk, and nothing is sent to it', async () => {
    const nodeBot = await NodeBot.start();
    try {
      const { gw } = await timedGateway({ CCAI_SIP_PORT: String(nodeBot.sipPort), SRTP: 'required' });
      const td = await dialGateway(gw.app.port);
      const invite = await nodeBot.uas.next('INVITE', 5_000);
      expect(invite.message.sip.body).toMatch(/^m=audio \d+ RTP\/SAVP /m);
      nodeBot.uas.reply(invite, 183, 'Session Progress', { body: botSdp(nodeBot.rtpPort, 101) });
      await nodeBot.sendAudio(offeredPort(invite), 10, 0x33);

      expect(td.mediaPayloads()).toEqual([]);
      expect(nodeBot.rtp).toEqual([]);
      expect(linesWith(gw.logs, 'bot early media')).toEqual([]);
      const [refused] = linesWith(gw.logs, 'early media SDP unusable: waiting for the answer (logged once a call)');
      expect(String(refused?.error)).toMatch(/required/);

      td.sendStop(); // while ringing: CANCEL
      nodeBot.uas.reply(await nodeBot.uas.next('CANCEL', 5_000), 200, 'OK');
      nodeBot.uas.reply(invite, 487, 'Request Terminated');
      await nodeBot.uas.next('ACK');
      await td.closed;
    } finally {
      await nodeBot.close();
    }
  });
});
