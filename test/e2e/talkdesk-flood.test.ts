import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FakeTalkdesk, makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { linesWith, type LogLine } from '../support/gateway.js';
import { EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Issue 13, item 2: what one Talkdesk stream can make the gateway write. Before the fix a `start` with a 60 KB
// interaction_id was bound into every log line of its call, and every second `start` and every `dtmf` before the
// answer wrote a line of its own: 150 KB sent, 120.7 MB of log. The rule held here: nothing a peer sends produces
// more than a bounded amount of log per call. No sipp: the "bot" is a UDP socket that takes the INVITE and never
// answers, so the call stays ringing, which is where early digits land.

const startGateway = gatewayPerTest();
const STREAM_SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';
/** What a whole flooded call may write: its handful of lifecycle lines and one line per kind of junk per 10 s. */
const MAX_CALL_LOG_BYTES = 16 * 1024;

function startFrame(ids: { callSid: string; interactionId: string }): string {
  return JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    start: {
      streamSid: STREAM_SID,
      accountSid: 'td-account-1',
      callSid: ids.callSid,
      tracks: ['inbound'],
      customParameters: { interaction_id: ids.interactionId, account_id: 'td-account-1' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: STREAM_SID,
  });
}

describe('a Talkdesk stream cannot flood the log', () => {
  it('a 60 KB interaction_id, 2,000 more starts, 2,000 second starts and 2,000 early digits: a bounded log, every frame counted', async () => {
    const bot = createSocket('udp4');
    bot.bind(0, '127.0.0.1');
    await once(bot, 'listening');
    let invites = 0;
    bot.on('message', (msg) => void (msg.toString('latin1').startsWith('INVITE ') && invites++));

    let logBytes = 0;
    let counting = false;
    const gw = await startGateway({ CCAI_SIP_PORT: String(bot.address().port), RTP_PORT_MIN: '32400', RTP_PORT_MAX: '32498' }, (line: LogLine) => {
      if (counting) logBytes += Buffer.byteLength(JSON.stringify(line)) + 1;
    });
    try {
      counting = true;
      const td = await FakeTalkdesk.connect(
        talkdeskUrl({
          port: gw.app.port,
          sipuri: '+17345551234',
          token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret),
          botId: EXAMPLE_BOT.botId,
          accountId: '0123456789abcdef01234567',
        }),
      );
      td.sendConnected();
      const huge = startFrame({ callSid: 'CA-flood', interactionId: 'i'.repeat(60_000) });
      for (let i = 0; i < 2001; i++) td.sendRaw(huge);
      // a good start: the call rings toward a bot that never answers, so the digits below come before any answer
      td.sendRaw(startFrame({ callSid: 'CA-flood', interactionId: 'interaction-42' }));
      const digit = JSON.stringify({ event: 'dtmf', streamSid: STREAM_SID, dtmf: { digit: '5' } });
      const second = startFrame({ callSid: 'CA-second', interactionId: 'interaction-43' });
      for (let i = 0; i < 2000; i++) {
        td.sendRaw(digit);
        td.sendRaw(second);
      }
      await expect.poll(() => invites, { timeout: 5_000 }).toBeGreaterThan(0);
      await td.close();
      await expect.poll(() => linesWith(gw.logs, 'call ended').length, { timeout: 10_000 }).toBe(1);
      await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);
      counting = false;

      expect(logBytes, `${logBytes} bytes of log for one call`).toBeLessThan(MAX_CALL_LOG_BYTES);

      // the refused start says why, once; the call went on with the good start and was placed once
      expect(linesWith(gw.logs, 'malformed frame ignored: start interaction_id longer than 128 characters')).toHaveLength(1);
      expect(linesWith(gw.logs, 'second start frame ignored')).toHaveLength(1);
      expect(linesWith(gw.logs, 'dtmf from talkdesk before the bot answered: dropped')).toHaveLength(1);
      const [ended] = linesWith(gw.logs, 'call ended');
      expect(ended).toMatchObject({ cause: 'talkdesk-closed', callSid: 'CA-flood', interactionId: 'interaction-42' });
      expect(ended!['talkdesk']).toMatchObject({ framesIn: 1 + 2001 + 1 + 4000, malformed: 2001, ignored: 4000 });
    } finally {
      bot.close();
    }
  });
});
