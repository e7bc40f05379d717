import { vi } from 'vitest';
import pino from 'pino';
import { DrachtioSipBackend } from '../../plugin/sip/drachtio/backend.js';
import { FakeDrachtio, type BotReceived } from '../support/fake-drachtio.js';
import { sipBackendContract, type ContractBot } from './sip-backend.contract.js';

const log = pino({ level: process.env.SIP_TEST_LOG ?? 'silent' });

/**
 * The bot sits behind a fake drachtio-server that the unmodified drachtio-srf drives over its control protocol; over
 * UDP and over TLS, where a Contact without its transport loses whatever the bot sends to it (issue 13).
 */
for (const transport of ['udp', 'tls'] as const) {
  sipBackendContract(`drachtio over ${transport}`, async () => {
    const fake = await FakeDrachtio.start();
    const backend = new DrachtioSipBackend({ host: '127.0.0.1', port: fake.port, secret: fake.secret, transport, log });
    await backend.start();
    return {
      backend,
      bot: drachtioBot(fake, transport),
      makeUnavailable: async () => {
        await fake.stopListening();
        await vi.waitFor(() => {
          if (backend.isConnected) throw new Error('still connected');
        });
      },
      dispose: async () => {
        await backend.stop();
        await fake.close();
      },
    };
  });
}

function drachtioBot(fake: FakeDrachtio, transport: 'udp' | 'tls'): ContractBot {
  let invite: BotReceived | undefined;
  const current = (): BotReceived => {
    if (!invite) throw new Error('no INVITE yet');
    return invite;
  };
  return {
    requestUri: `sip:+17345551234@127.0.0.1:5070;transport=${transport}`,
    // no such host over UDP; over TLS a port where the bot does not listen: drachtio-server answers 503 itself
    unreachableUri: transport === 'udp' ? 'sip:+17345551234@ccai.invalid:5070;transport=udp' : 'sip:+17345551234@127.0.0.1:5099;transport=tls',
    async invite() {
      const received = await fake.next('INVITE');
      invite = received;
      return { callId: received.sip.get('call-id')!, sdp: received.sip.body, header: (name) => received.sip.get(name) };
    },
    ring: (status, sdp, contentType = 'application/sdp') =>
      fake.respond(current(), status, status === 183 ? 'Session Progress' : 'Ringing', sdp === undefined ? {} : { body: sdp, headers: { 'Content-Type': contentType } }),
    async answer(sdp, headers = {}) {
      fake.respond(current(), 200, 'OK', { body: sdp, headers: { 'Content-Type': 'application/sdp', ...headers } });
      await fake.next('ACK');
    },
    async reject(status, reason, headers = {}) {
      fake.respond(current(), status, reason, { headers });
      await fake.next('ACK');
    },
    async cancelArrives() {
      fake.respond(await fake.next('CANCEL'), 200, 'OK');
    },
    async terminate() {
      fake.respond(current(), 487, 'Request Terminated');
      await fake.next('ACK');
    },
    async bye(headers) {
      fake.request(current(), 'BYE', { headers });
      return (await fake.next('200')).sip.status!;
    },
    async byeToContact(headers) {
      const lost = fake.lost.length;
      fake.request(current(), 'BYE', { headers, connection: 'new' });
      if (fake.lost.length > lost) return undefined;
      return (await fake.next('200')).sip.status!;
    },
    // drachtio-server runs RFC 4028 itself; the fake ends the session when told to
    async sessionExpires() {
      fake.serverGeneratedBye(current());
      const bye = await fake.next('BYE');
      fake.respond(bye, 200, 'OK');
      return { get: (name) => bye.sip.get(name) };
    },
    async reinvite(sdp) {
      fake.request(current(), 'INVITE', { body: sdp });
      const answer = await fake.next('200');
      fake.ack(current());
      return { status: answer.sip.status!, body: answer.sip.body };
    },
    async refer(headers) {
      fake.request(current(), 'REFER', { headers });
      await vi.waitFor(() => {
        if (!fake.received.some((r) => r.sip.status !== undefined && r.sip.status >= 200 && /REFER$/.test(r.sip.get('cseq') ?? ''))) {
          throw new Error('no final answer to REFER');
        }
      });
      const status = fake.received.find((r) => r.sip.status! >= 200 && /REFER$/.test(r.sip.get('cseq') ?? ''))!.sip.status!;
      await fake.next(String(status));
      if (status >= 300) return { status };
      const notify = await fake.next('NOTIFY');
      fake.respond(notify, 200, 'OK');
      return { status, notify: { get: (name) => notify.sip.get(name), body: notify.sip.body } };
    },
    async expectBye(timeoutMs) {
      const bye = await fake.next('BYE', timeoutMs);
      fake.respond(bye, 200, 'OK');
      return { get: (name) => bye.sip.get(name) };
    },
    count: (method) => fake.count(method),
    // drachtio-server relays a request from 127.0.0.2 (the bot is 127.0.0.1) on the dialog's transport
    async strangerSends(method, { headers = {}, sdp, cseq } = {}) {
      const txnId = fake.request(current(), method, {
        headers,
        sourceAddress: '127.0.0.2',
        ...(sdp === undefined ? {} : { body: sdp }),
        ...(cseq === undefined ? {} : { cseq }),
      });
      return (await fake.finalAnswer(txnId))?.sip.status;
    },
  };
}
