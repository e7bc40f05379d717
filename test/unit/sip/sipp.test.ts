import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { SipMessageView } from '../../../plugin/sip/backend.js';
import { EmbeddedSipBackend } from '../../../plugin/sip/embedded/backend.js';
import { testLog } from './fake-uas.js';

/** A bot UAS without media: INVITE → 100 → 180 → 200+SDP → ACK → 500 ms → BYE with X-Escalate → 200. */
const SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="bot UAS hangs up with escalation header">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="caller_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="callee_to"/>
      <ereg regexp="sips?:[^>;]*" search_in="hdr" header="Contact:" check_it="true" assign_to="caller_contact"/>
      <log message="INVITE from [$caller_from] to [$callee_to] contact [$caller_contact]"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:bot@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:bot@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bot 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=bot
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="500"/>
  <send retrans="500">
    <![CDATA[
      BYE [$caller_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$callee_to];tag=[pid]SIPpTag01[call_number]
      To: [$caller_from]
      [last_Call-ID:]
      CSeq: 1 BYE
      Max-Forwards: 70
      Contact: <sip:bot@[local_ip]:[local_port];transport=[transport]>
      X-Escalate: true
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`;

const SIPP_MISSING = 'sipp not found: apt-get install -y sip-tester';

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** true once something (sipp) holds the port: binding it ourselves fails */
async function portTaken(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => resolve(true));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(false)));
  });
}

interface SippRun {
  exit: Promise<number | null>;
  output: () => string;
  /** ends sipp if it is still running (a failed test must not leave it behind) */
  kill: () => void;
}

function runSipp(args: string[], cwd: string): SippRun {
  const child = spawn('sipp', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return {
    exit: new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    }),
    output: () => output,
    kill: () => {
      if (child.exitCode === null) child.kill();
    },
  };
}

describe('EmbeddedSipBackend against sipp (Debian sip-tester)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-embedded-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('places a call to a sipp UAS and reports its BYE with X-Escalate', async () => {
    if (spawnSync('sipp', ['-v']).error) throw new Error(SIPP_MISSING);
    const scenario = join(dir, 'uas_escalate.xml');
    writeFileSync(scenario, SCENARIO);
    const port = await freeUdpPort();
    const sipp = runSipp(
      ['-sf', scenario, '-t', 'u1', '-i', '127.0.0.1', '-p', String(port), '-m', '1', '-nostdin', '-timeout', '20s'],
      dir,
    );
    const backend = new EmbeddedSipBackend({
      bindAddress: '127.0.0.1',
      port: 0,
      advertisedAddress: '127.0.0.1',
      transport: 'udp',
      log: testLog,
      timers: { T1: 50 },
    });
    try {
      await vi.waitFor(async () => expect(await portTaken(port)).toBe(true), { timeout: 5000, interval: 50 });
      await backend.start();
      const onBye = vi.fn<(bye: SipMessageView) => void>();
      const onProgress = vi.fn<(status: number) => void>();
      const outgoing = backend.invite({
        requestUri: `sip:+17345551234@127.0.0.1:${port};transport=udp`,
        fromUser: 'talkdesk',
        headers: { 'X-Talkdesk-Call-Sid': 'CA-sipp' },
        sdp: 'v=0\r\no=plugin 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n',
        log: testLog,
        delegate: { onBye, onProgress, onRemoteSdp: vi.fn() },
      });
      const leg = await outgoing.answered;
      expect(leg.remoteSdp).toContain('m=audio');
      expect(onProgress).toHaveBeenCalledWith(180);
      await vi.waitFor(() => expect(onBye).toHaveBeenCalledTimes(1), { timeout: 5000 });
      expect(onBye.mock.calls[0]![0].get('x-escalate')).toBe('true');
      const code = await sipp.exit;
      if (code !== 0) throw new Error(`sipp exited with ${code}`);
      await vi.waitFor(() => expect(backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 }), { timeout: 5000 });
    } catch (err) {
      console.error(`sipp output:\n${sipp.output()}`);
      throw err;
    } finally {
      sipp.kill();
      await backend.stop();
    }
  });
});
