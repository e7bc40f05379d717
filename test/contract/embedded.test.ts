import { randomBytes } from 'node:crypto';
import { expect, vi } from 'vitest';
import { loopbackBackend } from '../unit/plugin/sip/backend-fixture.js';
import { FakeUas, type Received } from '../unit/plugin/sip/fake-uas.js';
import { sipBackendContract, type ContractBot } from './sip-backend.contract.js';

/**
 * The bot is a node:dgram UAS (the unit tests' FakeUas) talking to the embedded UAC over loopback UDP. A second of
 * RFC 4028 Session-Expires lasts 100 ms, so an unrefreshed session ends within the test.
 */
sipBackendContract('embedded', async () => {
  const backend = loopbackBackend({ sessionSecondMs: 100 });
  await backend.start();
  const uas = await FakeUas.start();
  return {
    backend,
    bot: embeddedBot(uas),
    makeUnavailable: () => backend.stop(),
    dispose: async () => {
      await backend.stop();
      await uas.close();
    },
  };
});

function embeddedBot(uas: FakeUas): ContractBot {
  let invite: Received | undefined;
  const current = (): Received => {
    if (!invite) throw new Error('no INVITE yet');
    return invite;
  };
  return {
    requestUri: uas.uri,
    unreachableUri: 'sip:+17345551234@ccai.invalid:5070;transport=udp',
    async invite() {
      const received = await uas.next('INVITE');
      invite = received;
      return { callId: received.message.callId, sdp: received.message.sip.body, header: (name) => received.message.sip.get(name) };
    },
    ring: (status, sdp, contentType) =>
      void uas.reply(current(), status, status === 183 ? 'Session Progress' : 'Ringing', sdp === undefined ? {} : { body: sdp, ...(contentType ? { contentType } : {}) }),
    async answer(sdp, headers = {}) {
      uas.reply(current(), 200, 'OK', { body: sdp, headers: Object.entries(headers).map(([name, value]) => `${name}: ${value}`) });
      await uas.next('ACK');
    },
    async reject(status, reason, headers = {}) {
      uas.reply(current(), status, reason, { headers: Object.entries(headers).map(([name, value]) => `${name}: ${value}`) });
      await uas.next('ACK');
    },
    async cancelArrives() {
      uas.reply(await uas.next('CANCEL'), 200, 'OK');
    },
    async terminate() {
      uas.reply(current(), 487, 'Request Terminated');
      await uas.next('ACK');
    },
    async bye(headers) {
      uas.requestInDialog(current(), 'BYE', { headers: Object.entries(headers).map(([name, value]) => `${name}: ${value}`) });
      return (await uas.next('200')).message.sip.status!;
    },
    // over UDP a new connection to our Contact is a datagram to it: FakeUas sends to the INVITE's sent-by port, so
    // this checks first that our Contact names that port and UDP
    async byeToContact(headers) {
      const { sip, via } = current().message;
      const contact = /<([^>]+)>/.exec(sip.get('contact')!)![1]!;
      if (!contact.endsWith(`:${via.port};transport=udp`)) throw new Error(`our Contact ${contact} is not where FakeUas sends`);
      uas.requestInDialog(current(), 'BYE', { headers: Object.entries(headers).map(([name, value]) => `${name}: ${value}`) });
      return (await uas.next('200')).message.sip.status!;
    },
    async sessionExpires() {
      const bye = await uas.next('BYE');
      uas.reply(bye, 200, 'OK');
      return { get: (name) => bye.message.sip.get(name) };
    },
    async reinvite(sdp) {
      const raw = uas.requestInDialog(current(), 'INVITE', { body: sdp });
      const answer = await uas.next('200');
      uas.send(ackFor(raw), current().message.via.port!);
      return { status: answer.message.sip.status!, body: answer.message.sip.body };
    },
    async refer(headers) {
      uas.requestInDialog(current(), 'REFER', { headers: Object.entries(headers).map(([name, value]) => `${name}: ${value}`) });
      const answer = await finalAnswer(uas, 'REFER');
      if (answer >= 300) return { status: answer };
      const notify = await uas.next('NOTIFY');
      uas.reply(notify, 200, 'OK');
      return { status: answer, notify: { get: (name) => notify.message.sip.get(name), body: notify.message.sip.body } };
    },
    async expectBye(timeoutMs) {
      const bye = await uas.next('BYE', timeoutMs);
      uas.reply(bye, 200, 'OK');
      return { get: (name) => bye.message.sip.get(name) };
    },
    count: (method) => uas.count(method),
    // a FakeUas on 127.0.0.2 (the bot and the backend are on 127.0.0.1) copying the dialog's identifiers
    async strangerSends(method, { headers = {}, sdp, cseq } = {}) {
      const stranger = await FakeUas.start('127.0.0.2');
      try {
        stranger.requestInDialog(current(), method, {
          headers: Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
          fromTag: uas.tag,
          ...(sdp === undefined ? {} : { body: sdp }),
          ...(cseq === undefined ? {} : { cseq }),
        });
        const final = () => stranger.received.find((r) => r.message.sip.status! >= 200 && r.message.cseq.method === method);
        await vi.waitFor(() => expect(final()).toBeDefined(), { timeout: 1000 }).catch(() => undefined);
        return final()?.message.sip.status;
      } finally {
        await stranger.close();
      }
    },
  };
}

/** the status of the next final response to a `method` request the bot sent */
async function finalAnswer(uas: FakeUas, method: string): Promise<number> {
  await vi.waitFor(() => {
    if (!uas.received.some((r) => r.message.sip.status !== undefined && r.message.sip.status >= 200 && r.message.cseq.method === method)) {
      throw new Error(`no final answer to ${method}`);
    }
  });
  const answer = uas.received.find((r) => r.message.sip.status! >= 200 && r.message.cseq.method === method)!;
  return (await uas.next(String(answer.message.sip.status))).message.sip.status!;
}

/** The ACK for the 2xx to the bot's re-INVITE: same dialog and CSeq number, a new branch, no body (§17.1.1.3). */
function ackFor(reinvite: string): string {
  const head = reinvite.slice(0, reinvite.indexOf('\r\n\r\n')).split('\r\n');
  const lines = head
    .filter((line) => !/^(content-type|content-length):/i.test(line))
    .map((line, i) => {
      if (i === 0) return line.replace(/^INVITE /, 'ACK ');
      if (/^cseq:/i.test(line)) return line.replace(/INVITE$/, 'ACK');
      if (/^via:/i.test(line)) return line.replace(/branch=[^;]+/, `branch=z9hG4bK${randomBytes(6).toString('hex')}`);
      return line;
    });
  return `${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
}
