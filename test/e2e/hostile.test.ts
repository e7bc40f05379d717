import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { EmbeddedSipBackend } from '../../plugin/sip/embedded/backend.js';
import { FakeTalkdesk, makeToken } from '../support/fake-talkdesk.js';
import { linesWith, startGateway, type Gateway } from '../support/gateway.js';
import { heapUsedAfterGc } from '../support/gc.js';
import { NodeBot, offeredPort } from '../support/node-bot.js';
import { dialGateway, EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { upgradeStatus } from '../support/upgrade-status.js';
import { INVALID, RFC2543_RESPONSE, VALID } from '../unit/plugin/sip/torture-messages.js';

// Every surface attacked at once while a normal call runs beside the attacks: the WSS port (bad tokens, an upgrade
// flood, slow upgrades, a ping flood, a client that never reads), the SIP port (RFC 4475 messages, stray and
// unknown-dialog requests, garbage) and the normal call's own RTP port (foreign, truncated, wrong-version, unknown-PT,
// RTCP packets). The normal call must complete with its audio bit-exact both ways, no exception may reach the event
// loop, and afterwards nothing may be left: calls, RTP ports, clock sinks, SIP transactions and dialogs, sockets.
//
// The bot is NodeBot (plain Node, no sipp, no fixed SIP or media port) behind the embedded backend, which is the
// backend with a SIP port of its own to attack; RTP ports 30000-30098 keep clear of other suites.

const RTP_RANGE = { RTP_PORT_MIN: '30000', RTP_PORT_MAX: '30098' };
/** a second loopback address: "foreign" to the bot's answer (127.0.0.1), and the source the auth flood comes from */
const FOREIGN = '127.0.0.2';
const FRAME = 160;
/** frames of audio each way on the normal call: 8 s, longer than the not-reading call takes to be ended (TALKDESK_NOT_READING_MS 2 s, once the kernel's buffers are full: about 6 s) */
const CALL_FRAMES = 400;

const T0 = performance.now();
const step = (what: string): void => void (process.env.HOSTILE_TRACE && console.log(Math.round(performance.now() - T0), what));
const faults: unknown[] = [];
const onFault = (err: unknown): void => void faults.push(err);
beforeEach(() => {
  faults.length = 0;
  process.on('uncaughtException', onFault);
  process.on('unhandledRejection', onFault);
});
afterEach(() => {
  process.off('uncaughtException', onFault);
  process.off('unhandledRejection', onFault);
});

/** sockets and timers are counted by kind; the test must end with the counts it started with */
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (/TCP|UDP|Pipe|TTY|Timeout|Immediate/.test(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** a 20 ms μ-law frame no other frame equals, and never all 0xff (silence) */
function distinctFrame(i: number, salt: number): Buffer {
  const f = Buffer.alloc(FRAME);
  for (let j = 0; j < FRAME; j++) f[j] = ((i * 7 + j * 13 + salt) % 250) + 1;
  f.writeUInt16BE(i, 0);
  f[2] = salt;
  return f;
}

function rtp(opts: { pt: number; seq: number; ts: number; ssrc: number; payload: Buffer; first?: number }): Buffer {
  const head = Buffer.alloc(12);
  head[0] = opts.first ?? 0x80;
  head[1] = opts.pt & 0x7f;
  head.writeUInt16BE(opts.seq & 0xffff, 2);
  head.writeUInt32BE(opts.ts >>> 0, 4);
  head.writeUInt32BE(opts.ssrc >>> 0, 8);
  return Buffer.concat([head, opts.payload]);
}

async function udp(address: string): Promise<UdpSocket> {
  const s = createSocket('udp4');
  s.on('error', () => undefined);
  s.bind(0, address);
  await once(s, 'listening');
  return s;
}

function url(port: number, query: Record<string, string>): string {
  return `ws://127.0.0.1:${port}/audiosocket/talkdesk/?${new URLSearchParams(query).toString()}`;
}

const goodQuery = (token = makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret)) => ({
  sipuri: '+17345551234',
  token,
  botId: EXAMPLE_BOT.botId,
  accountId: 'acc',
});

const b64url = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
function hmacToken(header: object, payload: object, secret: string): string {
  const body = `${b64url(header)}.${b64url(payload)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** A raw TCP client sending an upgrade one header line at a time, slower than any timeout allows. */
async function slowUpgrade(port: number): Promise<{ closedAfter: Promise<string> }> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write('GET /audiosocket/talkdesk/ HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => socket.writable && socket.write(`X-Slow-${randomBytes(2).toString('hex')}: a\r\n`), 500);
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  return {
    closedAfter: new Promise((resolve) =>
      socket.once('close', () => {
        clearInterval(trickle);
        resolve(answer.split('\r\n')[0] ?? '');
      }),
    ),
  };
}

/** the private WebSocket of a FakeTalkdesk, for what Talkdesk would never do: ping floods, not reading */
const wsOf = (td: FakeTalkdesk): WebSocket => (td as unknown as { ws: WebSocket }).ws;

/** A SIP request from the attacker's socket, with rport so the answer comes back to it. */
function sipRequest(method: string, from: UdpSocket, opts: { toTag?: string; callId?: string } = {}): string {
  const port = from.address().port;
  return [
    `${method} sip:talkdesk-gw@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70',
    `From: <sip:attacker@127.0.0.1>;tag=${randomBytes(3).toString('hex')}`,
    `To: <sip:talkdesk-gw@127.0.0.1>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
    `Call-ID: ${opts.callId ?? randomBytes(8).toString('hex')}`,
    `CSeq: 1 ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('hostile input on every surface, beside a live call', () => {
  it('the normal call completes bit-exact both ways; attackers get refused, dropped or ended; nothing leaks', { timeout: 90_000 }, async () => {
    const handlesBefore = handleCounts();
    const bot = await NodeBot.start();
    const gw: Gateway = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort), MAX_PLAYOUT_MS: '400', TALKDESK_NOT_READING_MS: '2000' });
    const own: Array<{ close(): unknown }> = [];
    try {
      const sipPort = (gw.app.backend as EmbeddedSipBackend).localPort;

      // ---- B: a Talkdesk client that stops reading while the bot floods it with audio ----

      step('B: a Talkdesk client that stops reading while the bot floods it with audio');
      const tdB = await dialGateway(gw.app.port, '+17345550002', { callSid: 'CA-not-reading', streamSid: 'MZ-not-reading' });
      const inviteB = await bot.uas.next('INVITE', 5_000);
      bot.answer(inviteB);
      await bot.uas.next('ACK');
      const portB = offeredPort(inviteB);
      // it keeps sending audio (so TALKDESK_TIMEOUT_MS never fires) and reads nothing
      (wsOf(tdB) as unknown as { _socket: Socket })._socket.pause();
      const tdBSending = tdB.streamAudio(Buffer.alloc(FRAME * 50 * 40, 0xff));
      const blaster = await udp('127.0.0.1');
      own.push(blaster);
      let blastSeq = 0;
      const big = Buffer.alloc(1400, 0x7e);
      const blast = setInterval(() => {
        for (let k = 0; k < 16; k++, blastSeq++) blaster.send(rtp({ pt: 0, seq: blastSeq, ts: blastSeq * 1400, ssrc: 0xb1a57, payload: big }), portB, '127.0.0.1');
      }, 20);
      own.push({ close: () => clearInterval(blast) });

      // ---- A: the normal call ----

      step('A: the normal call');
      const tdA = await dialGateway(gw.app.port, '+17345550001', { callSid: 'CA-normal', streamSid: 'MZ-normal' });
      const inviteA = await bot.uas.next('INVITE', 5_000);
      expect(inviteA.message.sip.get('x-talkdesk-call-sid')).toBe('CA-normal');
      bot.answer(inviteA);
      await bot.uas.next('ACK');
      const portA = offeredPort(inviteA);
      const botAudio = Array.from({ length: CALL_FRAMES }, (_, i) => distinctFrame(i, 17));
      const callerAudio = Array.from({ length: CALL_FRAMES }, (_, i) => distinctFrame(i, 99));
      const botSender = await udp('127.0.0.1');
      own.push(botSender);
      const botDone = (async () => {
        const t0 = performance.now();
        for (let i = 0; i < CALL_FRAMES; i++) {
          const wait = t0 + i * 20 - performance.now();
          if (wait > 0) await sleep(wait);
          // an SSRC change and a sequence/timestamp jump halfway: the bot restarting its stream is still its audio
          const jump = i >= CALL_FRAMES / 2 ? { seq: 30_000, ts: 9_000_000, ssrc: 0x2222 } : { seq: 0, ts: 0, ssrc: 0x1111 };
          botSender.send(rtp({ pt: 0, seq: i + jump.seq, ts: i * FRAME + jump.ts, ssrc: jump.ssrc, payload: botAudio[i]! }), portA, '127.0.0.1');
        }
      })();
      const callerDone = tdA.streamAudio(Buffer.concat(callerAudio));

      // ---- WSS: bad upgrades from the foreign address, until it is rate-limited ----

      step('WSS: bad upgrades from the foreign address, until it is rate-limited');
      const port = gw.app.port;
      const secret = EXAMPLE_BOT.clientSecret;
      const appId = EXAMPLE_BOT.clientId;
      const bad: Array<[string, Record<string, string>, number]> = [
        ['no sipuri', { token: 'x', botId: EXAMPLE_BOT.botId }, 400],
        ['no token', { sipuri: '+1', botId: EXAMPLE_BOT.botId }, 400],
        ['sipuri with an @', { ...goodQuery(), sipuri: '1@evil.example.com' }, 400],
        ['agentassist=maybe', { ...goodQuery(), agentassist: 'maybe' }, 400],
        ['unknown botId', { ...goodQuery(), botId: 'st-nobody' }, 401],
        ['wrong secret', goodQuery(makeToken(appId, 'not-the-secret')), 401],
        ['alg none', goodQuery(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ appId })}.`), 401],
        ['RS256 header, HMAC with the secret (key confusion)', goodQuery(hmacToken({ alg: 'RS256', typ: 'JWT' }, { appId }, secret)), 401],
        ['expired', goodQuery(jwt.sign({ appId, exp: Math.floor(Date.now() / 1000) - 60 }, secret, { algorithm: 'HS256' })), 401],
        ['wrong appId', goodQuery(makeToken('cs-someone-else', secret)), 401],
        ['oversized token', goodQuery('a'.repeat(5_000)), 401],
        ['garbage token', goodQuery('%%%.%%%.%%%'), 401],
      ];
      for (const [what, query, status] of bad) expect([what, await upgradeStatus(url(port, query), { localAddress: FOREIGN })]).toEqual([what, status]);
      const flood = await Promise.all(Array.from({ length: 20 }, () => upgradeStatus(url(port, goodQuery(makeToken(appId, 'guess'))), { localAddress: FOREIGN })));
      expect(flood.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(await upgradeStatus(url(port, goodQuery()), { localAddress: FOREIGN })).toBe(429); // even a good token, from there
      // the flood's address is the one refused: a bad token from 127.0.0.1 is still only 401
      expect(await upgradeStatus(url(port, goodQuery(makeToken(appId, 'guess'))), { localAddress: '127.0.0.1' })).toBe(401);

      // ---- WSS: slow upgrades and HTTP junk ----

      step('WSS: slow upgrades and HTTP junk');
      const slow = await Promise.all(Array.from({ length: 5 }, () => slowUpgrade(port)));
      const junk = connect(port, '127.0.0.1');
      junk.on('error', () => undefined);
      junk.write(randomBytes(2_000));
      own.push({ close: () => junk.destroy() });

      // ---- WSS: an authenticated socket that sends junk, then a frame over MAX_FRAME_BYTES (1009) ----

      step('WSS: an authenticated socket that sends junk, then a frame over MAX_FRAME_BYTES (1009)');
      const tdC = await FakeTalkdesk.connect(url(port, goodQuery()));
      tdC.sendBinary(randomBytes(500));
      tdC.sendRaw('not json');
      tdC.sendRaw('{"event":"media","media":{"payload":"AAAA');
      tdC.sendRaw(JSON.stringify({ event: 'media', media: { track: 'inbound', payload: '!!!notbase64' }, streamSid: 'x' }));
      tdC.sendRaw('x'.repeat(70_000));
      expect((await tdC.closed).code).toBe(1009);

      // ---- WSS: pings. Paced on the normal call's own socket: every one answered, the call unaffected. A flood on
      // another socket: ws (8.23, maxPendingAutoPongs 60) terminates the flooder once 60 pongs are pending. ----
      step('WSS: pings');
      const wsA = wsOf(tdA);
      let pongs = 0;
      wsA.on('pong', () => pongs++);
      const heapBefore = await heapUsedAfterGc();
      for (let i = 0; i < 1_000; i++) {
        wsA.ping(randomBytes(125));
        if (i % 10 === 9) await expect.poll(() => pongs, { timeout: 2_000, interval: 1 }).toBe(i + 1);
      }
      const tdD = await FakeTalkdesk.connect(url(port, goodQuery()));
      for (let i = 0; i < 5_000; i++) wsOf(tdD).ping(randomBytes(125));
      expect((await tdD.closed).code).toBe(1006);
      const heapGrowth = (await heapUsedAfterGc()) - heapBefore;

      // ---- SIP: the torture messages, garbage, stray responses, requests for dialogs that do not exist ----

      step('SIP: the torture messages, garbage, stray responses, requests for dialogs that do not exist');
      const attacker = await udp('127.0.0.1');
      own.push(attacker);
      const answers: string[] = [];
      attacker.on('message', (m) => answers.push(m.toString().split('\r\n')[0]!));
      for (const raw of [...Object.values(VALID), ...Object.values(INVALID), RFC2543_RESPONSE]) attacker.send(Buffer.from(raw, 'latin1'), sipPort, '127.0.0.1');
      for (const g of [randomBytes(1_200), randomBytes(65_000), Buffer.from('\r\n\r\n'), Buffer.alloc(0)]) attacker.send(g, sipPort, '127.0.0.1');
      attacker.send(sipRequest('BYE', attacker, { toTag: 'nope' }), sipPort, '127.0.0.1');
      attacker.send(sipRequest('OPTIONS', attacker), sipPort, '127.0.0.1');
      await expect.poll(() => answers.slice().sort(), { timeout: 5_000 }).toEqual(['SIP/2.0 200 OK', 'SIP/2.0 481 Call/Transaction Does Not Exist']);
      // an INVITE naming a dialog we do not have (the live call's Call-ID, a made-up tag) gets one stateless 481 per
      // source and second, like the 403 below: from an address of its own, since the torture INVITEs used 127.0.0.1's
      const ghost = await udp('127.0.0.3');
      own.push(ghost);
      const ghostAnswers: string[] = [];
      ghost.on('message', (m) => ghostAnswers.push(m.toString().split('\r\n')[0]!));
      for (let i = 0; i < 3; i++) ghost.send(sipRequest('INVITE', ghost, { toTag: 'nope', callId: inviteA.message.callId }), sipPort, '127.0.0.1');
      await expect.poll(() => ghostAnswers, { timeout: 5_000 }).toEqual(['SIP/2.0 481 Call/Transaction Does Not Exist']);
      // an out-of-dialog INVITE gets one stateless 403 per source and second: the torture INVITEs above used
      // 127.0.0.1's, so a scanner on another address asks, three times, and is answered once
      const scanner = await udp(FOREIGN);
      own.push(scanner);
      const scanned: string[] = [];
      scanner.on('message', (m) => scanned.push(m.toString().split('\r\n')[0]!));
      for (let i = 0; i < 3; i++) scanner.send(sipRequest('INVITE', scanner), sipPort, '127.0.0.1');
      await expect.poll(() => scanned, { timeout: 5_000 }).toEqual(['SIP/2.0 403 Forbidden (UAC only)']);

      // ---- RTP: at the normal call's port, from a foreign address and malformed from the bot's own ----

      step("RTP: at the normal call's port, from a foreign address and malformed from the bot's own");
      const foreign = await udp(FOREIGN);
      own.push(foreign);
      const injected = Buffer.alloc(FRAME, 0x99);
      for (let i = 0; i < 50; i++) foreign.send(rtp({ pt: 0, seq: 100 + i, ts: 0, ssrc: 0x1111, payload: injected }), portA, '127.0.0.1');
      const sameIp = await udp('127.0.0.1');
      own.push(sameIp);
      const payload = Buffer.alloc(FRAME, 0x55);
      const malformed = [
        Buffer.from([0x80, 0x00, 0x01]), // truncated header
        rtp({ pt: 0, seq: 1, ts: 0, ssrc: 1, payload, first: 0x40 }), // version 1
        rtp({ pt: 96, seq: 2, ts: 0, ssrc: 1, payload }), // a payload type nobody negotiated
        rtp({ pt: 0, seq: 3, ts: 0, ssrc: 1, payload: Buffer.alloc(0) }), // PCMU with no audio
        rtp({ pt: 96, seq: 4, ts: 0, ssrc: 1, payload: Buffer.concat([Buffer.alloc(8), Buffer.from([0xbe, 0xde, 0, 1, 0, 0, 0, 0]), payload]), first: 0x92 }), // CSRCs + extension
        Buffer.from('80c80006000000010000000000000000000000000000000000000000', 'hex'), // RTCP SR (PT 200)
        rtp({ pt: 0, seq: 5, ts: 0, ssrc: 1, payload, first: 0x8f }).subarray(0, 20), // claims 15 CSRCs it does not carry
      ];
      for (let round = 0; round < 20; round++) for (const pkt of malformed) sameIp.send(pkt, portA, '127.0.0.1');

      // ---- the not-reading call is ended with its cause ----

      step('the not-reading call is ended with its cause');
      // the bot hears it first: our BYE names the cause (the 'call ended' line waits for the BYE's answer)
      const byeB = await bot.uas.next('BYE', 30_000);
      clearInterval(blast);
      expect(byeB.message.callId).toBe(inviteB.message.callId);
      expect(byeB.message.sip.get('x-reason')).toBe('talkdesk-not-reading');
      bot.uas.reply(byeB, 200, 'OK');
      await expect
        .poll(() => linesWith(gw.logs, 'call ended').find((l) => l.cause === 'talkdesk-not-reading'), { timeout: 5_000 })
        .toMatchObject({ outcome: 'error', talkdesk: { mediaDropped: expect.any(Number) } });
      step('not-reading call ended');
      await tdB.closed;
      await tdBSending;

      // ---- the normal call ends normally: the bot's BYE, after its last frame ----

      step("the normal call ends normally: the bot's BYE, after its last frame");
      await Promise.all([botDone, callerDone]);
      await sleep(300);
      bot.uas.requestInDialog(inviteA, 'BYE');
      const { stop } = await tdA.waitForStop(10_000);
      expect(stop.stop).toMatchObject({ command: 'ok', callSid: 'CA-normal' });
      await tdA.closed;

      // bot → Talkdesk: every frame, bit-exact, in order, nothing else (no injected or malformed packet's audio)
      const toTalkdesk = Buffer.concat(tdA.mediaPayloads());
      expect(toTalkdesk.length).toBe(CALL_FRAMES * FRAME);
      expect(toTalkdesk.equals(Buffer.concat(botAudio))).toBe(true);
      // what the gateway saw and counted on A's RTP port
      await expect.poll(() => linesWith(gw.logs, 'call ended').find((l) => l.cause === 'bot-bye'), { timeout: 5_000 }).toBeDefined();
      const endedA = linesWith(gw.logs, 'call ended').find((l) => l.cause === 'bot-bye');
      const stats = (endedA as unknown as { rtp: Record<string, number> }).rtp;

      // Talkdesk → bot: every caller frame reached the bot on A's leg, bit-exact and in order (silence fills gaps): late
      // under the attack is not lost, and these loud frames are never silence the buffer may leave out
      const known = new Map(callerAudio.map((f, i) => [f.toString('hex'), i]));
      const arrived = bot.rtp.filter((p) => p.from === portA).map((p) => known.get(p.payload.toString('hex')));
      const callerArrived = arrived.filter((i): i is number => i !== undefined);
      expect(callerArrived).toEqual([...callerArrived].sort((a, b) => a - b));
      expect(new Set(callerArrived).size).toBe(callerArrived.length);
      expect(stats.callerSpeechLostFrames).toBe(0);
      expect(callerArrived).toEqual(callerAudio.map((_, i) => i));
      expect(bot.rtp.filter((p) => p.from === portA).every((p) => p.payloadType === 0 && p.payload.length === FRAME)).toBe(true);
      expect(stats.droppedForeign).toBeGreaterThanOrEqual(50);
      expect(stats.droppedMalformed + stats.droppedUnknownPt).toBeGreaterThanOrEqual(20 * (malformed.length - 1));

      // the slow upgrades were cut off by the server (408), not left hanging
      for (const s of slow) expect(await s.closedAfter).toMatch(/^HTTP\/1.1 408 /);

      // the pings cost no lasting memory: the heap after a full collection grew by what the test itself still holds
      // (the flooder's client, this step's code), about 0.7 MB here
      expect(heapGrowth).toBeLessThan(4 * 1024 * 1024);

      // nothing reached the event loop, and nothing is left in the live gateway
      expect(faults).toEqual([]);
      await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);
      expect({ ports: gw.app.ports.inUse, clockSinks: gw.app.clock.size }).toEqual({ ports: 0, clockSinks: 0 });
      expect((gw.app.backend as EmbeddedSipBackend).activeCounts.dialogs).toBe(0);
      expect(linesWith(gw.logs, 'call ended').map((l) => l.cause).sort()).toEqual(['bot-bye', 'talkdesk-closed', 'talkdesk-closed', 'talkdesk-not-reading']);
    } finally {
      for (const o of own) o.close();
      await gw.stop();
      await bot.close();
    }
    // the backend's transactions (some would live on for Timer J) are gone with it; so are our sockets
    expect((gw.app.backend as EmbeddedSipBackend).activeCounts).toEqual({ transactions: 0, dialogs: 0 });
    expect(faults).toEqual([]);
    await expect.poll(() => handleCounts(), { timeout: 5_000 }).toEqual(handlesBefore);
  });
});
