import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from './daemon.js';
import { requireTool } from './tools.js';

const READY_TIMEOUT_MS = 10_000;

export interface BaresipOptions {
  /** its SIP port on 127.0.0.1 (UDP) */
  sipPort: number;
  /** its RTP ports (it binds RTCP on the next, unless muxed) */
  rtpPorts: [number, number];
  /** 8 kHz mono 16-bit WAV it plays to whoever calls */
  audioFile: string;
}

export interface BaresipProcess {
  /** what baresip printed so far */
  output(): string;
  /**
   * RFC 6035-style summary its rtcpsummary module prints at the end of a call (`EX=BareSip;CS=…;PL=…;JI=…;DL=…`): what
   * it made of the call's RTCP. Resolves when the line appears.
   */
  summary: Promise<Record<string, string>>;
}

/**
 * Debian's baresip 1.0 as a bot that is a real SIP user agent with its own RTP/RTCP stack (libre): answers every call
 * at once, plays `audioFile`, sends RTCP on its RTP port + 1, and reports the call's RTCP when it ends. Bound to
 * 127.0.0.1 for SIP and media (`-n`: otherwise it advertises the host's first interface). Stopped when the test ends.
 */
export async function startBaresip(opts: BaresipOptions): Promise<BaresipProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'baresip-'));
  await writeFile(
    join(dir, 'config'),
    [
      'poll_method epoll',
      `sip_listen 127.0.0.1:${opts.sipPort}`,
      `audio_source aufile,${opts.audioFile}`,
      // nothing plays what it hears: aufile in 1.0 is a source only, and no sound card is needed
      'audio_player aufile,/dev/null',
      'audio_alert aufile,/dev/null',
      'module_path /usr/lib/baresip/modules',
      'module g711.so',
      'module aufile.so',
      'module rtcpsummary.so',
      'module_app account.so',
      'module_app menu.so',
      `rtp_ports ${opts.rtpPorts[0]}-${opts.rtpPorts[1]}`,
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'accounts'), '<sip:bot@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMU\n');
  const baresip = await startDaemon(requireTool('baresip'), ['-f', dir, '-n', '127.0.0.1'], {
    name: `baresip on ${opts.sipPort}`,
    dir,
    ready: (out) => out.includes('baresip is ready.'),
    timeoutMs: READY_TIMEOUT_MS,
  });
  const summary = new Promise<Record<string, string>>((resolve) => {
    baresip.onOutput = () => {
      const line = /EX=BareSip;[^\n]*/.exec(baresip.output())?.[0];
      if (line === undefined) return;
      baresip.onOutput = undefined;
      resolve(Object.fromEntries(line.split(';').filter((kv) => kv.includes('=')).map((kv) => kv.split('=', 2) as [string, string])));
    };
  });
  return { output: baresip.output, summary };
}
