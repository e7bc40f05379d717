import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { botPorts, probePorts } from '../../support/ports.js';
import { expectSippSuccess, type SippResult, startSipp, startSippBot } from '../../support/sipp.js';

/** One RTP packet as it arrived at the probe's SDP address. */
interface Packet {
  pt: number;
  marker: boolean;
  seq: number;
  payload: Buffer;
  fromPort: number;
}

/**
 * Each bot scenario against the probe caller made for it, both sipps on loopback. The probe's SDP points at a Node
 * socket (-key rtp_port), so the test sees the bot's RTP exactly as the plugin will.
 */
describe('sipp bot scenarios, called by a sipp probe', () => {
  const bot = botPorts(9);
  const probe = probePorts(0);
  let rtp: Socket;
  let packets: Packet[];

  beforeEach(async () => {
    packets = [];
    rtp = createSocket('udp4');
    rtp.on('message', (msg, rinfo) =>
      packets.push({
        pt: (msg[1] as number) & 0x7f,
        marker: ((msg[1] as number) & 0x80) !== 0,
        seq: msg.readUInt16BE(2),
        payload: msg.subarray(12),
        fromPort: rinfo.port,
      }),
    );
    await new Promise<void>((resolve) => rtp.bind(0, '127.0.0.1', resolve));
  });
  afterEach(() => new Promise<void>((resolve) => rtp.close(resolve)));

  async function call(botScenario: string, probeScenario: string) {
    const sippBot = await startSippBot({ scenario: botScenario, ...bot });
    const caller = await startSipp({
      scenario: probeScenario,
      ...probe,
      remote: `127.0.0.1:${bot.sipPort}`,
      extraArgs: ['-s', 'bot', '-key', 'rtp_port', String((rtp.address() as AddressInfo).port)],
    });
    const [botResult, callerResult] = await Promise.all([sippBot.done, caller.done]);
    expectSippSuccess(botResult);
    expectSippSuccess(callerResult);
    return { ttsUlaw: sippBot.ttsUlaw, botResult, callerResult };
  }

  const audio = () => packets.filter((p) => p.pt === 0);
  const dtmf = () => packets.filter((p) => p.pt === 101);
  const received = (r: SippResult, firstLine: string) => r.messages.includes(`\n${firstLine}`);

  it('uas_escalate: says the TTS bit-exact, sends DTMF 1 on PT 101, then BYEs with escalation headers', async () => {
    const { ttsUlaw, callerResult } = await call('uas_escalate.xml', 'uac_probe.xml');
    expect(Buffer.concat(audio().map((p) => p.payload))).toEqual(ttsUlaw);
    expect(audio().map((p) => p.seq)).toEqual(audio().map((_, i) => 1000 + i));
    expect(audio().map((p) => p.marker)).toEqual(audio().map((_, i) => i === 0));
    expect(new Set(packets.map((p) => p.fromPort))).toEqual(new Set([bot.mediaPort]));
    expect(dtmf()).toHaveLength(10);
    expect(dtmf().every((p) => p.payload[0] === 1)).toBe(true);
    expect(callerResult.logs).toContain('BYE X-Escalate= true User-to-User= 7b227175657565223a2262696c6c696e67227d');
    expect(callerResult.messages).toContain('X-Escalation-Data: {"reason":"agent_requested","queue":"billing"');
  });

  it('uas_ok: says the TTS, then a BYE without escalation headers', async () => {
    const { ttsUlaw, callerResult } = await call('uas_ok.xml', 'uac_probe.xml');
    expect(Buffer.concat(audio().map((p) => p.payload))).toEqual(ttsUlaw);
    expect(dtmf()).toHaveLength(0);
    expect(callerResult.logs).toContain('BYE X-Escalate= User-to-User=\n');
  });

  it('uas_busy: answers 486 and takes the ACK', async () => {
    const { botResult } = await call('uas_busy.xml', 'uac_probe_busy.xml');
    expect(received(botResult, 'ACK ')).toBe(true);
    expect(packets).toHaveLength(0);
  });

  it('uas_noanswer: rings until CANCEL, then 200 to the CANCEL and 487 to the INVITE', async () => {
    const { botResult, callerResult } = await call('uas_noanswer.xml', 'uac_probe_cancel.xml');
    expect(received(botResult, 'CANCEL ')).toBe(true);
    expect(callerResult.messages).toMatch(/SIP\/2.0 487 Request Terminated[\s\S]*CSeq: 1 INVITE/);
    expect(packets).toHaveLength(0);
  });

  it('uas_wait_bye: talks until the caller BYEs, then answers 200', async () => {
    const { ttsUlaw, botResult } = await call('uas_wait_bye.xml', 'uac_probe_bye.xml');
    expect(received(botResult, 'BYE ')).toBe(true);
    // the probe hangs up after 1 s, well inside the 1.9 s of speech: what played is its beginning
    const played = Buffer.concat(audio().map((p) => p.payload));
    expect(played.length).toBeGreaterThan(30 * 160);
    expect(played.length).toBeLessThan(ttsUlaw.length);
    expect(played).toEqual(ttsUlaw.subarray(0, played.length));
  });
});
