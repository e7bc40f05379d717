/**
 * `npm run demo`: one whole simulated call on this machine, told as it happens.
 *
 * The real plugin (in-process, from jambonz-app.json), a sipp bot on UDP that answers, speaks, sends an RFC 4733
 * digit and hangs up with escalation headers, and a fake Talkdesk client that streams a spoken prompt. It prints
 * the plugin's own log events as a story, the `stop` Talkdesk receives, and the audio counted each way.
 */
import { FRAME_BYTES, speechUlaw } from '../test/support/audio.js';
import { startGateway, type LogLine } from '../test/support/gateway.js';
import { botPorts } from '../test/support/ports.js';
import { startSippBot } from '../test/support/sipp.js';
import { CALLER_TEXT, dialGateway, packetRate, splitBotAudio } from '../test/support/talkdesk-call.js';
import { requireTool } from '../test/support/tools.js';

const t0 = performance.now();
function say(who: string, what: string): void {
  const at = ((performance.now() - t0) / 1000).toFixed(3).padStart(7);
  process.stdout.write(`[${at}s] ${who.padEnd(9)} ${what}\n`);
}

/** The plugin's log events that make the story, in its own words. */
const STORY: Record<string, (l: LogLine) => string> = {
  'talkdesk stream accepted': (l) => `upgrade authenticated (JWT ok), sipuri ${String(l.sipuri)}: waiting for start`,
  'bot ringing': (l) => `INVITE sent; bot answers ${String(l.status)}`,
  'bot answered': (l) => `bot answered in ${String(l.setupMs)} ms; RTP to ${String(l.remote)}, 20 ms PCMU both ways`,
  'dtmf from bot (RFC 4733)': (l) => `bot sent digit '${String(l.digit)}' (RFC 4733)`,
  'call ended': (l) => `call ended: outcome ${String(l.outcome)}, cause ${String(l.cause)}, ring group ${String(l.ringGroup)}`,
};

async function main(): Promise<void> {
  for (const tool of ['sipp', 'espeak-ng', 'sox'] as const) requireTool(tool);
  if (process.getuid?.() !== 0) {
    throw new Error('sipp replays the bot\'s voice from a pcap through a raw socket: run the demo as root');
  }

  const callerAudio = await speechUlaw(CALLER_TEXT);
  const sipp = await startSippBot({ scenario: 'uas_escalate.xml', ...botPorts(0), rtpEcho: true });
  say('sipp bot', `listening on sip:127.0.0.1:${botPorts(0).sipPort} (answers, speaks, sends a digit, BYE with escalation headers)`);

  let callEnded: LogLine | undefined;
  const gateway = await startGateway({ CCAI_SIP_PORT: String(botPorts(0).sipPort) }, (line) => {
    const tell = STORY[line.msg];
    if (tell) say('gateway', tell(line));
    if (line.msg === 'call ended') callEnded = line;
  });
  say('gateway', `listening on ws://127.0.0.1:${gateway.app.port}/audiosocket/talkdesk/ (embedded SIP backend)`);

  try {
    const td = await dialGateway(gateway.app.port);
    say('talkdesk', `connected + start sent; streaming the caller: "${CALLER_TEXT}"`);
    const streaming = td.streamAudio(callerAudio);

    const { stop } = await td.waitForStop(30_000);
    say('talkdesk', `received ${JSON.stringify(stop)}`);
    await td.closed;
    await streaming;
    const result = await sipp.done;
    await gateway.stop(); // idempotent: here it waits for the call's summary line

    const audio = splitBotAudio(td.received, sipp.ttsUlaw);
    const rtp = (callEnded?.rtp ?? {}) as { packetsSent?: number; packetsReceived?: number };
    process.stdout.write(
      [
        '',
        'Audio, counted each way:',
        `  Talkdesk → gateway   ${callerAudio.length / FRAME_BYTES} media frames of caller speech (then the gateway fills silence)`,
        `  gateway  → bot       ${rtp.packetsSent ?? '?'} RTP packets, 50 a second`,
        `  bot      → gateway   ${rtp.packetsReceived ?? '?'} RTP packets (TTS, the digit, and the caller echoed back)`,
        `  gateway  → Talkdesk  ${audio.ttsFramesInOrder + audio.echoed.length} media frames: ` +
          `TTS ${audio.ttsFramesInOrder}/${audio.ttsFrames} bit-exact, ` +
          `${audio.echoed.length} caller frames echoed at ${packetRate(audio.echoed).toFixed(1)} pkt/s`,
        '',
        `Talkdesk Studio takes the ${(stop.stop as { command?: string }).command === 'escalate' ? 'Escalation' : 'other'} exit` +
          ` with ring group "${String((stop.stop as { ringGroup?: unknown }).ringGroup)}".`,
        `sipp bot exit code ${String(result.code)} (${result.code === 0 ? 'its scenario completed' : 'FAILED'}).`,
        '',
      ].join('\n'),
    );
    if (result.code !== 0) process.exitCode = 1;
  } finally {
    await gateway.stop();
    await sipp.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exit(1);
});
