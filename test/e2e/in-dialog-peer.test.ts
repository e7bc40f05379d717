import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { linesWith } from '../support/gateway.js';
import { botSdp, NodeBot } from '../support/node-bot.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { FakeUas, type Received } from '../unit/plugin/sip/fake-uas.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Issue 13, item 1, end to end: someone on the path reads a live call's Call-ID and tags and, from another address
// (127.0.0.2; the bot and the gateway are on 127.0.0.1), tries to escalate it to their own queue, transfer it, push
// its CSeq out of the bot's reach, or pull its media to themselves. The bot is NodeBot behind the embedded backend;
// RTP ports 31600-31698 keep clear of other suites.
const startGateway = gatewayPerTest();
const RTP_RANGE = { RTP_PORT_MIN: '31600', RTP_PORT_MAX: '31698' };
const STRANGER = '127.0.0.2';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function recorder(address: string): Promise<{ socket: Socket; packets: Buffer[] }> {
  const socket = createSocket('udp4');
  const packets: Buffer[] = [];
  socket.on('message', (msg) => packets.push(msg));
  socket.bind(0, address);
  await once(socket, 'listening');
  cleanup.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { socket, packets };
}

/** A call to NodeBot, answered, with the caller talking; and a stranger on 127.0.0.2 who read its identifiers. */
async function liveCall() {
  const bot = await NodeBot.start();
  cleanup.push(() => bot.close());
  const stranger = await FakeUas.start(STRANGER);
  cleanup.push(() => stranger.close());
  const gw = await startGateway({ ...RTP_RANGE, CCAI_SIP_PORT: String(bot.sipPort) });
  const td = await dialGateway(gw.app.port);
  const invite = await bot.uas.next('INVITE', 5000);
  bot.answer(invite);
  await bot.uas.next('ACK');
  void td.streamAudio(Buffer.alloc(160 * 50 * 20, 0x42));
  const forge = (method: string, opts: { headers?: string[]; body?: string; cseq?: number } = {}): string =>
    stranger.requestInDialog(invite, method, { ...opts, fromTag: bot.uas.tag });
  return { bot, stranger, gw, td, invite, forge };
}

/** the bot re-INVITEs with `sdp` and ACKs our 200 */
async function botReinvites(bot: NodeBot, invite: Received, sdp: string): Promise<void> {
  bot.uas.requestInDialog(invite, 'INVITE', { body: sdp });
  const ok = await bot.uas.next('200');
  expect(ok.message.cseq.method).toBe('INVITE');
  bot.uas.requestInDialog(invite, 'ACK', { cseq: ok.message.cseq.seq });
}

const stops = (td: Awaited<ReturnType<typeof dialGateway>>) => td.received.filter((r) => r.msg.event === 'stop');

describe('a live call against a stranger who read its Call-ID and tags', () => {
  it('BYE and REFER with X-Escalation-Data, and an OPTIONS with CSeq 2^31-1, get 403; the bot’s own escalation still reaches Talkdesk', async () => {
    const { bot, stranger, td, invite, forge, gw } = await liveCall();
    forge('BYE', { headers: ['X-Escalation-Data: {"queue":"attacker-queue"}'] });
    expect((await stranger.next('403')).message.cseq.method).toBe('BYE');
    forge('REFER', { headers: ['Refer-To: <sip:attacker@203.0.113.9>', 'X-Escalation-Data: {"queue":"attacker-queue"}'] });
    expect((await stranger.next('403')).message.cseq.method).toBe('REFER');
    forge('OPTIONS', { cseq: 2147483647 });
    expect((await stranger.next('403')).message.cseq.method).toBe('OPTIONS');
    await sleep(300);
    expect(stops(td)).toEqual([]);

    bot.uas.requestInDialog(invite, 'BYE', { headers: ['X-Escalation-Data: {"queue":"billing"}'] });
    expect((await bot.uas.next('200')).message.cseq.method).toBe('BYE');
    const { stop } = await td.waitForStop(5000);
    expect(stop.stop).toMatchObject({ command: 'escalate', ringGroup: 'billing' });
    expect(stops(td)).toHaveLength(1);
    // three refusals, one rate-limited line
    expect(linesWith(gw.logs, "in-dialog request from a source that is not the dialog's peer refused")).toHaveLength(1);
  });

  it('a stranger’s re-INVITE moves nothing; the bot’s own may move the port, but not to an address it never gave', async () => {
    const { bot, stranger, td, invite, forge, gw } = await liveCall();
    const theirs = await recorder(STRANGER);
    await sleep(200);
    expect(bot.rtp.length).toBeGreaterThan(0); // caller audio flows to the bot

    forge('INVITE', { body: botSdp(theirs.socket.address().port, 101).replace(/127\.0\.0\.1/g, STRANGER) });
    expect((await stranger.next('403')).message.cseq.method).toBe('INVITE');
    // the bot itself names an address it never gave: answered (the dialog is the bot's) but the media stays
    await botReinvites(bot, invite, botSdp(theirs.socket.address().port, 101).replace(/127\.0\.0\.1/g, STRANGER));
    const before = bot.rtp.length;
    await sleep(300);
    expect(theirs.packets).toEqual([]);
    expect(bot.rtp.length).toBeGreaterThan(before + 10);
    expect(linesWith(gw.logs, 'bot moved its media')).toEqual([]);
    expect(linesWith(gw.logs, 're-INVITE names a media address the bot never gave; media unchanged')).toHaveLength(1);

    // a new port on the bot's own address is a move the bot may make
    const moved = await recorder('127.0.0.1');
    await botReinvites(bot, invite, botSdp(moved.socket.address().port, 101));
    await sleep(300);
    expect(moved.packets.length).toBeGreaterThan(10);
    expect(theirs.packets).toEqual([]);

    bot.uas.requestInDialog(invite, 'BYE');
    await bot.uas.next('200');
    expect((await td.waitForStop(5000)).stop.stop).toMatchObject({ command: 'ok' });
  });
});
