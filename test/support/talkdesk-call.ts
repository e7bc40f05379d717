import { FRAME_BYTES, frames } from './audio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl, type Received, type StartParams } from './fake-talkdesk.js';

/** The example bot shipped in jambonz-app.json: what a fresh checkout accepts. */
export const EXAMPLE_BOT = {
  botId: 'st-00000000-0000-0000-0000-000000000000',
  clientId: 'cs-example-client-id',
  clientSecret: 'EXAMPLE-SECRET-change-me',
} as const;

export const CALLER_TEXT = 'Hi, I would like a refund for my last bill, please.';

/** Talkdesk connecting the way Studio does: the Voice Stream URL with the example bot's JWT, then connected + start
 * (`start` overrides its ids, e.g. a callSid of its own per call). */
export async function dialGateway(port: number, sipuri = '+17345551234', start: Partial<StartParams> = {}): Promise<FakeTalkdesk> {
  const td = await FakeTalkdesk.connect(
    talkdeskUrl({
      port,
      sipuri,
      token: makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret),
      botId: EXAMPLE_BOT.botId,
      accountId: '0123456789abcdef01234567',
      agentassist: false,
      trailingSlash: true,
    }),
  );
  td.sendConnected();
  td.sendStart({
    streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
    accountSid: 'td-account-1',
    callSid: 'CA-test-call-1',
    interactionId: 'interaction-42',
    ...start,
  });
  return td;
}

export interface BotAudioReport {
  /** frames of the bot's TTS that reached Talkdesk, bit-exact and in order */
  ttsFramesInOrder: number;
  ttsFrames: number;
  /** the other frames: the bot echoing the caller's audio back (sipp -rtp_echo), with arrival times */
  echoed: number[];
}

/**
 * Splits what Talkdesk received into the bot's own speech and the caller audio it echoed. The TTS is matched as an
 * ordered subsequence, so a lost, altered or reordered TTS frame shows as ttsFramesInOrder < ttsFrames.
 */
export function splitBotAudio(received: Received[], ttsUlaw: Buffer): BotAudioReport {
  const tts = frames(ttsUlaw);
  let next = 0;
  const echoed: number[] = [];
  for (const r of received) {
    if (r.msg.event !== 'media') continue;
    const payload = Buffer.from(String((r.msg.media as { payload?: unknown }).payload ?? ''), 'base64');
    if (next < tts.length && payload.equals(tts[next]!)) next++;
    else if (payload.length === FRAME_BYTES) echoed.push(r.at);
  }
  return { ttsFramesInOrder: next, ttsFrames: tts.length, echoed };
}

/** Packets per second over a run of arrival times (first to last). */
export function packetRate(times: number[]): number {
  if (times.length < 2) return 0;
  return ((times.length - 1) * 1000) / (times[times.length - 1]! - times[0]!);
}
