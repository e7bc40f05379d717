import type { ProbeReport } from './probe.js';

/** The probe's report for a person: the ladder, the media, RTP each way, the ending and the verdict. */
export function renderReport(r: ProbeReport): string {
  const out: string[] = [];
  out.push(`SIP${r.requestUri === undefined ? '' : ` (${r.requestUri})`}`);
  for (const step of r.ladder) {
    out.push(`  ${String(step.atMs).padStart(6)} ms  ${step.dir} ${step.line}`);
    for (const [name, value] of Object.entries(step.headers ?? {})) out.push(`${' '.repeat(16)}${name}: ${value}`);
  }
  if (r.media) {
    const m = r.media;
    out.push('', 'Media (the answer)');
    out.push(`  ${m.codec} (PT ${m.payloadType})${m.dtmfPayloadType === undefined ? ', no telephone-event' : `, telephone-event PT ${m.dtmfPayloadType}`}`);
    out.push(`  RTP to ${m.address}:${m.port}, ${m.srtp ? 'SRTP (SDES)' : 'plain RTP'}; RTCP ${m.rtcp}`);
  }
  if (r.rtp) {
    const { toBot, fromBot } = r.rtp;
    out.push('', 'RTP');
    const atBot = toBot.lostAtBot === undefined ? 'the bot sent no RTCP report' : `the bot reports ${toBot.lostAtBot} lost, jitter ${toBot.jitterAtBotMs} ms`;
    out.push(`  to the bot    ${toBot.packets} packets; ${atBot}${toBot.rttMs === undefined ? '' : `; round trip ${toBot.rttMs} ms`}`);
    out.push(`  from the bot  ${fromBot.packets} packets, ${fromBot.lost} lost, jitter up to ${fromBot.jitterMs} ms`);
    if (r.rtp.firstBotAudioMs !== undefined) out.push(`  first bot audio at Talkdesk ${r.rtp.firstBotAudioMs} ms after the answer`);
    out.push(`  digits: ${r.rtp.digitsToBot} to the bot, from the bot ${r.rtp.digitsFromBot.length === 0 ? 'none' : r.rtp.digitsFromBot.join(' ')}`);
  }
  const e = r.ending;
  out.push('', 'Ending');
  if (e.outcome !== undefined) out.push(`  ${e.outcome} (${e.cause ?? ''})${e.ringGroup === undefined ? '' : `, ring group ${e.ringGroup}`}${e.detail === undefined ? '' : `; ${e.detail}`}`);
  out.push(`  Talkdesk got: ${e.stop === undefined ? (e.callerHungUp ? 'no stop (the caller hung up first)' : 'no stop') : JSON.stringify(e.stop)}`);
  if (r.recording) out.push(`  the bot's audio: ${r.recording.path} (${r.recording.bytes} bytes, 8 kHz μ-law WAV)`);
  if (r.notes.length > 0) out.push('', 'The gateway noted', ...r.notes.map((n) => `  ${n}`));
  out.push('', `${r.verdict.pass ? 'PASS' : 'FAIL'}: ${r.verdict.reason}`);
  return `${out.join('\n')}\n`;
}
