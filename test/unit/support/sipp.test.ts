import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { botPorts, probePorts } from '../../support/ports.js';
import { expectSippSuccess, type SippBot, startSipp, startSippBot } from '../../support/sipp.js';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the sipp wrapper', () => {
  it('kills a sipp that outlives its timeout and says so, with its logs', async () => {
    // uas_noanswer waits for a CANCEL that never comes
    const bot = await startSippBot({ scenario: 'uas_noanswer.xml', ...botPorts(10), timeoutMs: 300 });
    const result = await bot.done;
    expect(result.timedOut).toBe(true);
    expect(isRunning(bot.pid)).toBe(false);
    expect(() => expectSippSuccess(result)).toThrow(/sipp uas_noanswer.xml was killed after its timeout; run dir \S+/);
    expect(existsSync(bot.runDir)).toBe(true); // kept for a post-mortem
    await rm(bot.runDir, { recursive: true });
  });

  it('stop() ends sipp, resolves once it is gone, and does not count the cut-short run as a success', async () => {
    const bot = await startSippBot({ scenario: 'uas_wait_bye.xml', ...botPorts(10) });
    expect(isRunning(bot.pid)).toBe(true);
    const result = await bot.stop();
    expect(isRunning(bot.pid)).toBe(false);
    expect(result).toMatchObject({ stopped: true, timedOut: false });
    // sipp exits 0 on SIGTERM
    expect(() => expectSippSuccess(result)).toThrow('was stopped before its scenario ended');
    await rm(bot.runDir, { recursive: true });
  });

  let leftRunning: SippBot | undefined;
  it('registers a cleanup that ends a sipp the test left running', async () => {
    leftRunning = await startSippBot({ scenario: 'uas_wait_bye.xml', ...botPorts(10) });
    expect(isRunning(leftRunning.pid)).toBe(true);
  });
  it('(the sipp of the previous test is gone)', async () => {
    expect(leftRunning).toBeDefined();
    expect(isRunning(leftRunning?.pid ?? 0)).toBe(false);
    await rm(leftRunning?.runDir ?? '', { recursive: true });
  });

  it('rejects with sipp stderr when the SIP port is taken', async () => {
    const ports = botPorts(11);
    const squatter = createSocket('udp4');
    await new Promise<void>((resolve) => squatter.bind(ports.sipPort, '127.0.0.1', resolve));
    try {
      await expect(startSippBot({ scenario: 'uas_busy.xml', ...ports })).rejects.toThrow(
        /never got ready[\s\S]*exited 254 \(fatal error binding a socket\)[\s\S]*--- stderr ---\n.*\S/,
      );
    } finally {
      squatter.close();
    }
  });

  it('runs a call over TCP (t1), as the TLS tests with socat in front need', async () => {
    const bot = await startSippBot({ scenario: 'uas_busy.xml', ...botPorts(12), transport: 't1' });
    const probe = probePorts(3);
    const caller = await startSipp({
      scenario: 'uac_probe_busy.xml',
      ...probe,
      transport: 't1',
      remote: `127.0.0.1:${botPorts(12).sipPort}`,
      extraArgs: ['-s', 'bot', '-key', 'rtp_port', String(probe.mediaPort)],
    });
    const [botResult, callerResult] = await Promise.all([bot.done, caller.done]);
    expectSippSuccess(botResult);
    expectSippSuccess(callerResult);
    expect(botResult.messages).toContain('Via: SIP/2.0/TCP');
    // a clean run leaves nothing behind
    await Promise.all([bot.stop(), caller.stop()]);
    expect(existsSync(bot.runDir) || existsSync(caller.runDir)).toBe(false);
  });
});
