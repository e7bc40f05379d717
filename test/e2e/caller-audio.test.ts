import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { isSilentFrame } from '../../media/silence.js';
import { FRAME_BYTES, frames, speechWithPauses } from '../support/audio.js';
import type { FakeTalkdesk, SentStream } from '../support/fake-talkdesk.js';
import { linesWith } from '../support/gateway.js';
import { botPorts } from '../support/ports.js';
import { SENDER_PROFILES, type Pacing, type SenderProfile } from '../support/sender-profiles.js';
import { expectSippSuccess, startSippBot } from '../support/sipp.js';
import { dialGateway } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';

// Judge the caller's audio where it lands: at the bot. Each call streams 16 s of espeak-ng speech with pauses from a
// fake Talkdesk that paces it as one real kind of sender does (test/support/sender-profiles.ts), to a sipp bot that
// echoes every RTP packet back (-rtp_echo); what comes back to Talkdesk, less the bot's own TTS, is what the bot
// heard, in the order it heard it (loopback UDP loses nothing). Every frame that held sound must be there, once, in
// order, bit-exact; only silence may have been added or left out. All profiles run as concurrent calls to one sipp.

const bot = botPorts(5);
const startGateway = gatewayPerTest();

/** One burst of 500 ms, 2 s in, then 14 s of talk: time for the delay it leaves to come back. */
const ONE_BURST: Pacing = { frameBytes: 160, speed: 1, stall: { firstAtMs: 2_000, lengthMs: 500, catchUp: true } };
const RELEASED_AT_MS = 2_500;
/** How soon after a burst, and how close to its steady value, the caller's delay at the bot must be back. */
const RECOVERY_MS = 10_000;
const RECOVERY_SLACK_MS = 40;

interface Heard {
  /** the caller's speech frames (indices into its audio) in the order the bot heard them */
  order: number[];
  /** what came back that is neither a caller frame, the bot's TTS nor silence: corrupted or foreign audio */
  unknown: number;
  /** per speech frame heard, from when its sender meant to send it to when the bot's echo reached Talkdesk (ms) */
  delayMs: Map<number, number>;
}

/** What the bot heard of `caller`, from the echo Talkdesk received. */
function heardByBot(td: FakeTalkdesk, caller: Buffer[], tts: Buffer[], sent: SentStream): Heard {
  const speech = new Map<string, number>();
  caller.forEach((f, i) => {
    if (!isSilentFrame(f)) speech.set(f.toString('hex'), i);
  });
  const ttsFrames = new Set(tts.map((f) => f.toString('hex')));
  const nominal = nominalTimes(sent);
  const heard: Heard = { order: [], unknown: 0, delayMs: new Map() };
  for (const r of td.received) {
    if (r.msg.event !== 'media') continue;
    const payload = Buffer.from(String((r.msg.media as { payload?: unknown }).payload ?? ''), 'base64');
    const hex = payload.toString('hex');
    const i = speech.get(hex);
    if (i !== undefined) {
      heard.order.push(i);
      heard.delayMs.set(i, r.at - nominal[i]!);
    } else if (!ttsFrames.has(hex) && !isSilentFrame(payload)) heard.unknown++;
  }
  return heard;
}

/** When the sender meant each 20 ms frame of its audio to leave (performance.now() time): its chunk's nominal time. */
function nominalTimes(sent: SentStream): number[] {
  const out: number[] = [];
  for (const c of sent.chunks) {
    for (let at = c.offset; at < c.offset + c.bytes; at += FRAME_BYTES) out[at / FRAME_BYTES] = sent.t0 + c.nominalMs + (at - c.offset) / 8;
  }
  return out;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe('caller audio reaches the bot whole, whatever the sender', () => {
  it(
    'every speech frame arrives at the bot once, in order, bit-exact, for every sender profile; a burst\'s delay goes again',
    async () => {
      const audio = await speechWithPauses();
      const caller = frames(audio);
      const runs: Array<{ name: SenderProfile | 'one-burst-500'; pacing: SenderProfile | Pacing }> = [
        ...SENDER_PROFILES.map((p) => ({ name: p, pacing: p })),
        { name: 'one-burst-500', pacing: ONE_BURST },
      ];
      const sipp = await startSippBot({
        scenario: 'uas_wait_bye.xml',
        ...bot,
        rtpEcho: true,
        timeoutMs: 50_000,
        extraArgs: ['-m', String(runs.length)],
      });
      const gw = await startGateway({ CCAI_SIP_PORT: String(bot.sipPort), RTP_PORT_MIN: '32000', RTP_PORT_MAX: '32098' });

      const calls = await Promise.all(
        runs.map(async (run, n) => {
          const td = await dialGateway(gw.app.port, '+17345551234', { callSid: `CA-profile-${run.name}`, streamSid: `MZprofile${n}` });
          await td.waitFor((r) => r.msg.event === 'media', 10_000, "the bot's first audio");
          const sent = await td.streamAudio(audio, { profile: run.pacing, seed: n + 1 });
          // what the buffer still holds goes out within its delay, and the echo comes back
          await sleep(1_500);
          td.sendStop();
          await td.closed;
          return { run, td, sent };
        }),
      );
      expectSippSuccess(await sipp.done);
      await expect.poll(() => gw.app.registry.size, { timeout: 5_000 }).toBe(0);

      const speechFrames = caller.flatMap((f, i) => (isSilentFrame(f) ? [] : [i]));
      expect(speechFrames.length).toBeGreaterThan(caller.length / 2);
      expect(caller.length - speechFrames.length, 'the speech has pauses for the buffer to shorten').toBeGreaterThan(100);
      const ended = linesWith(gw.logs, 'call ended') as unknown as Array<{ callSid: string; rtp: Record<string, number> }>;
      for (const { run, td, sent } of calls) {
        const heard = heardByBot(td, caller, frames(sipp.ttsUlaw), sent);
        // soft: one profile's failure shows with every other's
        expect.soft(heard.order, `${run.name}: every speech frame, once, in order`).toEqual(speechFrames);
        expect.soft(heard.unknown, `${run.name}: nothing but the caller's frames, the bot's TTS and silence`).toBe(0);
        const summary = ended.find((l) => l.callSid === `CA-profile-${run.name}`)!.rtp;
        expect.soft(summary, run.name).toMatchObject({ callerSpeechLostFrames: 0 });

        if (run.name === 'one-burst-500') {
          const delay = (from: number, to: number) =>
            [...heard.delayMs].filter(([i]) => i * 20 >= from && i * 20 < to).map(([, d]) => d);
          const steady = percentile(delay(0, 2_000), 50);
          const during = Math.max(...delay(2_000, RELEASED_AT_MS));
          const recovered = percentile(delay(RELEASED_AT_MS + RECOVERY_MS, Infinity), 95);
          expect.soft(during, 'the burst held its frames back').toBeGreaterThan(steady + 300);
          expect.soft(recovered, `delay after the burst: steady p50 ${steady.toFixed(1)} ms`).toBeLessThanOrEqual(steady + RECOVERY_SLACK_MS);
          expect.soft(summary.callerSilenceRemovedFrames, 'the delay went by silence left out').toBeGreaterThanOrEqual(20);
        }
      }
    },
    90_000,
  );
});
