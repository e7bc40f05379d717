import { createSocket, type Socket } from 'node:dgram';
import { parse, serialize, SrtpSession } from 'rtp-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { newMasterKey, parseCrypto, formatCrypto, type SrtpMasterKey } from '../../media/sdes.js';
import { linesWith } from '../support/gateway.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { FakeUas, type Received } from '../unit/plugin/sip/fake-uas.js';
import { gatewayPerTest } from './gateway-per-test.js';
import { waitFor as waitUntil } from '../support/wait-for.js';

// SDES-SRTP calls end to end: the real gateway, a scripted Node UAS as the bot (no sipp: Debian's sipp has no SRTP),
// and the bot's media on a plain dgram socket through rtp-packet's SrtpSession, an implementation independent of
// the gateway's own. Ports: SIP and bot RTP are picked by the OS; the gateway's RTP range is this file's own.
const startGateway = gatewayPerTest();
const RTP_RANGE = { RTP_PORT_MIN: '23000', RTP_PORT_MAX: '23098' };

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** The bot's RTP socket: what it receives, decrypted with our key when one is given. */
class BotMedia {
  readonly payloads: Buffer[] = [];
  undecryptable = 0;
  rx: SrtpSession | undefined;
  private constructor(readonly socket: Socket) {
    socket.on('message', (msg) => {
      const plain = this.rx ? this.rx.decryptRtp(msg) : msg;
      const pkt = plain && parse(plain);
      if (pkt) this.payloads.push(Buffer.from(pkt.payload));
      else this.undecryptable++;
    });
  }
  static async bind(): Promise<BotMedia> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const m = new BotMedia(s);
    cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
    return m;
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(buf: Buffer, port: number): Promise<void> {
    return new Promise((r) => this.socket.send(buf, port, '127.0.0.1', () => r()));
  }
}

function botSdp(port: number, proto: 'RTP/AVP' | 'RTP/SAVP', crypto?: string): string {
  return [
    'v=0', 'o=bot 1 1 IN IP4 127.0.0.1', 's=bot', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${port} ${proto} 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv',
    ...(crypto ? [`a=crypto:${crypto}`] : []), '',
  ].join('\r\n');
}

/** The gateway's offer: its RTP port and its SDES key. */
function readOffer(invite: Received): { port: number; proto: string; key: SrtpMasterKey | undefined } {
  const body = invite.message.sip.body;
  const m = /^m=audio (\d+) (\S+) /m.exec(body)!;
  const crypto = /^a=crypto:(.+?)\r?$/m.exec(body);
  const parsed = crypto ? parseCrypto(crypto[1]!) : undefined;
  return { port: Number(m[1]), proto: m[2]!, key: parsed?.ok ? parsed.value.key : undefined };
}

async function call(srtp: 'optional' | 'required') {
  const uas = await FakeUas.start();
  cleanup.push(() => uas.close());
  const gw = await startGateway({ SRTP: srtp, CCAI_SIP_PORT: String(uas.port), ...RTP_RANGE });
  const td = await dialGateway(gw.app.port);
  const invite = await uas.next('INVITE', 5000);
  return { uas, gw, td, invite, offer: readOffer(invite), media: await BotMedia.bind() };
}

/** Caller audio that never contains 0xff (μ-law silence), so it can be told apart from silence fill. */
const CALLER = Buffer.from(Array.from({ length: 160 * 25 }, (_, i) => (i * 7 + 1) % 255));

/** this file's packets take longer to settle than the default wait */
const waitFor = (cond: () => boolean, ms = 3000): Promise<void> => waitUntil(cond, ms);

describe('SDES-SRTP toward the bot, end to end', () => {
  it('required: RTP/SAVP offer, audio both ways encrypted and bit-exact, bot BYE → stop{ok}', async () => {
    const { uas, gw, td, invite, offer, media } = await call('required');
    expect(offer.proto).toBe('RTP/SAVP');
    expect(offer.key).toBeDefined();
    const botKey = newMasterKey();
    media.rx = new SrtpSession(offer.key!.key, offer.key!.salt);
    uas.reply(invite, 200, 'OK', { body: botSdp(media.port, 'RTP/SAVP', formatCrypto(botKey, 1)) });
    await uas.next('ACK');

    await td.streamAudio(CALLER);
    const tts = Array.from({ length: 10 }, (_, n) => Buffer.alloc(160, 0x10 + n));
    const tx = new SrtpSession(botKey.key, botKey.salt);
    for (const [n, p] of tts.entries()) {
      await media.send(tx.encryptRtp(serialize({ payloadType: 0, sequenceNumber: 500 + n, timestamp: n * 160, ssrc: 0xb07, payload: p }))!, offer.port);
    }
    await td.waitFor(() => td.mediaPayloads().length >= tts.length, 3000, 'the bot audio');
    await new Promise((r) => setTimeout(r, 200)); // the last caller frames

    expect(media.undecryptable).toBe(0);
    const heard = Buffer.concat(media.payloads).filter((b) => b !== 0xff);
    expect(Buffer.from(heard).equals(CALLER)).toBe(true);
    expect(td.mediaPayloads().map((p) => p.toString('hex'))).toEqual(tts.map((p) => p.toString('hex')));

    uas.requestInDialog(invite, 'BYE');
    const { stop } = await td.waitForStop(5000);
    expect(stop.stop).toMatchObject({ command: 'ok' });
    await td.closed;
    expect(linesWith(gw.logs, 'bot answered')[0]).toMatchObject({ srtp: true });
  });

  it('required: a bot answering plain RTP ends the call: stop{error} to Talkdesk, BYE with X-Reason srtp-refused', async () => {
    const { uas, gw, td, invite, media } = await call('required');
    uas.reply(invite, 200, 'OK', { body: botSdp(media.port, 'RTP/AVP') });
    const { stop } = await td.waitForStop(5000);
    expect(stop.stop).toMatchObject({ command: 'error' });
    const bye = await uas.next('BYE');
    expect(bye.message.sip.get('x-reason')).toBe('srtp-refused');
    uas.reply(bye, 200, 'OK');
    await td.closed;
    await waitFor(() => linesWith(gw.logs, 'call ended').length === 1);
    const ended = linesWith(gw.logs, 'call ended')[0];
    expect(ended).toMatchObject({ outcome: 'error', cause: 'srtp-refused' });
    expect(String(ended?.detail)).toMatch(/no usable SRTP key from the bot \(no a=crypto attribute\), and rtp.srtp is "required"/);
  });

  it('a bot re-INVITE with a new key re-keys what we receive; one without a key is refused and SRTP stays', async () => {
    const { uas, gw, td, invite, offer, media } = await call('optional');
    const firstKey = newMasterKey();
    uas.reply(invite, 200, 'OK', { body: botSdp(media.port, 'RTP/AVP', formatCrypto(firstKey, 1)) });
    await uas.next('ACK');
    const pcmu = (seq: number, fill: number) => serialize({ payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc: 0xb07, payload: Buffer.alloc(160, fill) });
    await media.send(new SrtpSession(firstKey.key, firstKey.salt).encryptRtp(pcmu(1, 0x21))!, offer.port);
    await td.waitFor(() => td.mediaPayloads().length === 1, 3000, 'audio under the first key');

    const secondKey = newMasterKey();
    uas.requestInDialog(invite, 'INVITE', { body: botSdp(media.port, 'RTP/AVP', formatCrypto(secondKey, 1)) });
    const ok = await uas.next('200');
    expect(ok.message.sip.body).toContain(`a=crypto:${formatCrypto(offer.key!, 1)}`); // our key is unchanged
    await new Promise((r) => setTimeout(r, 50));
    await media.send(new SrtpSession(secondKey.key, secondKey.salt).encryptRtp(pcmu(2, 0x22))!, offer.port);
    await td.waitFor(() => td.mediaPayloads().length === 2, 3000, 'audio under the second key');

    uas.requestInDialog(invite, 'INVITE', { body: botSdp(media.port, 'RTP/AVP') });
    await uas.next('200');
    await new Promise((r) => setTimeout(r, 50));
    expect(linesWith(gw.logs, 're-INVITE SDP unusable; media unchanged').at(-1)?.error).toMatch(/staying on SRTP/);
    await media.send(pcmu(3, 0x23), offer.port); // plain RTP: dropped
    await media.send(new SrtpSession(secondKey.key, secondKey.salt).encryptRtp(pcmu(4, 0x24))!, offer.port);
    await td.waitFor(() => td.mediaPayloads().length === 3, 3000, 'audio under the second key again');
    expect(td.mediaPayloads().map((p) => p[0])).toEqual([0x21, 0x22, 0x24]);

    td.sendStop();
    const bye = await uas.next('BYE');
    uas.reply(bye, 200, 'OK');
    await td.closed;
    await waitFor(() => linesWith(gw.logs, 'call ended').length === 1);
    expect(linesWith(gw.logs, 'call ended')[0]).toMatchObject({ rtp: { droppedSrtp: 1 } });
  });

  it('optional: RTP/AVP + a=crypto offer; a plain answer gives a plain call, logged once', async () => {
    const { uas, gw, td, invite, offer, media } = await call('optional');
    expect(offer.proto).toBe('RTP/AVP');
    expect(offer.key).toBeDefined();
    uas.reply(invite, 200, 'OK', { body: botSdp(media.port, 'RTP/AVP') });
    await uas.next('ACK');
    const tts = Buffer.alloc(160, 0x42);
    await media.send(serialize({ payloadType: 0, sequenceNumber: 1, timestamp: 0, ssrc: 0xb07, payload: tts }), offer.port);
    await td.waitFor((r) => r.msg.event === 'media', 3000, 'the bot audio');
    expect(td.mediaPayloads()[0]!.equals(tts)).toBe(true);
    expect(linesWith(gw.logs, 'SRTP offered but not taken up: plain RTP for this call')).toHaveLength(1);
    expect(linesWith(gw.logs, 'bot answered')[0]).toMatchObject({ srtp: false });

    td.sendStop();
    const bye = await uas.next('BYE');
    uas.reply(bye, 200, 'OK');
    await td.closed;
  });
});
