import { describe, expect, it } from 'vitest';
import { speechUlaw } from '../support/audio.js';
import { linesWith } from '../support/gateway.js';
import { botPorts } from '../support/ports.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { CALLER_TEXT, dialGateway, splitBotAudio } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// A Kore bot can transfer with a REFER (voiceUtils.refer) instead of an escalation BYE. A real call: the plugin
// in-process, a sipp bot that answers, speaks, REFERs and expects 202, a NOTIFY and our BYE; a fake Talkdesk client.

const BOT = botPorts(4);
/** this file's own RTP range and bot, apart from the other e2e files */
const ENV = { RTP_PORT_MIN: '28000', RTP_PORT_MAX: '28098', CCAI_SIP_PORT: String(BOT.sipPort) };

const startGateway = gatewayPerTest();

interface ReferCase {
  title: string;
  /** the REFER's Refer-To */
  referTo: string;
  /** the REFER's X-Transfer-Queue */
  transferQueue: string;
  /** ESCALATION_RULES for this case; the shipped ones when absent */
  rules?: unknown[];
  ringGroup: string;
  rule: string;
}

const CASES: ReferCase[] = [
  {
    title: 'shipped rules, no escalation header: the ring group is the Refer-To user part',
    referTo: `<sip:billing@127.0.0.1:${BOT.sipPort}>`,
    transferQueue: 'not-read-by-the-shipped-rules',
    ringGroup: 'billing',
    rule: 'refer-to-user',
  },
  {
    title: 'a rule over a header embedded in Refer-To (?X-Queue=…) gives the ring group, %-decoded',
    referTo: '<sip:+18005550100@carrier.example?X-Queue=priority%20east>',
    transferQueue: 'unused',
    rules: [{ name: 'x-queue', header: 'X-Queue', match: '^(.+)$' }],
    ringGroup: 'priority east',
    rule: 'x-queue',
  },
  {
    title: 'a rule over an X-header of the REFER gives the ring group',
    referTo: '<tel:+18005550100>',
    transferQueue: '{"queue":"vip"}',
    rules: [{ name: 'x-transfer-queue', header: 'X-Transfer-Queue', field: 'queue' }],
    ringGroup: 'vip',
    rule: 'x-transfer-queue',
  },
];

describe('a REFER from the bot is an escalation', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', async (_title, c) => {
    const sipp = await startSippBot({
      scenario: 'uas_refer.xml',
      ...BOT,
      extraArgs: ['-key', 'refer_to', c.referTo, '-key', 'transfer_queue', c.transferQueue],
    });
    const gateway = await startGateway({ ...ENV, ...(c.rules ? { ESCALATION_RULES: JSON.stringify(c.rules) } : {}) });
    const td = await dialGateway(gateway.app.port);
    void td.streamAudio(await speechUlaw(CALLER_TEXT));

    const { stop } = await td.waitForStop(20_000);
    expect(stop.stop).toMatchObject({ command: 'escalate', ringGroup: c.ringGroup, accountSid: 'td-account-1', callSid: 'CA-test-call-1' });
    await td.closed;

    // the bot saw 202, a final NOTIFY and then our BYE, in that order (the scenario checks Event, state and sipfrag)
    const result = await sipp.done;
    expectSippSuccess(result);
    const sent = result.messages;
    expect(sent).toMatch(/^SIP\/2\.0 202 Accepted/m);
    expect(sent).toMatch(/^Content-Type: message\/sipfrag;version=2\.0/m);
    expect(sent.indexOf('NOTIFY sip:')).toBeLessThan(sent.indexOf('BYE sip:'));
    expect(sent).toMatch(/^X-Reason: bot-refer/m);

    await expect.poll(() => gateway.app.registry.size, { timeout: 5_000 }).toBe(0);
    const [ended] = linesWith(gateway.logs, 'call ended');
    expect(ended).toMatchObject({ outcome: 'escalate', cause: 'bot-refer', ringGroup: c.ringGroup, detail: `REFER, rule ${c.rule}` });
    // the bot's speech reached Talkdesk, all of it and in order, before the transfer
    const audio = splitBotAudio(td.received, sipp.ttsUlaw);
    expect(audio.ttsFrames).toBe(sipp.ttsUlaw.length / 160);
    expect(audio.ttsFramesInOrder).toBe(audio.ttsFrames);
  });
});
