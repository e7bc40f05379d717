import { EventEmitter } from 'node:events';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exitOnShutdownSignals, FORCED_EXIT_MS } from '../../plugin/operations/shutdown.js';
import { DrachtioBot } from '../support/drachtio-bot.js';
import { BOT_PORT, FakeDrachtio } from '../support/fake-drachtio.js';
import { FakeTalkdesk, makeToken, talkdeskUrl, UpgradeRefusedError } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { makeTestPki } from '../support/pki.js';
import { dialGateway, EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { gatewayPerTest } from './gateway-per-test.js';
import { scrape } from '../support/metrics-scrape.js';

// Run it like a carrier: metrics, /ready, the call cap and the SIGTERM drain, through the whole gateway. The bot sits
// behind the fake drachtio-server with real RTP (no sipp: no fixed ports to clash with other test runs).
const startGateway = gatewayPerTest();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gatewayWithBot(env: Record<string, string> = {}): Promise<{ gw: Gateway; drachtio: FakeDrachtio }> {
  const drachtio = await FakeDrachtio.start();
  cleanups.push(() => drachtio.close());
  const gw = await startGateway({
    SIP_BACKEND: 'drachtio',
    DRACHTIO_PORT: String(drachtio.port),
    DRACHTIO_SECRET: drachtio.secret,
    RTP_PORT_MIN: '33000',
    RTP_PORT_MAX: '33098',
    // where the fake drachtio-server's bot answers (test/support/fake-drachtio.ts): no socket of ours
    CCAI_SIP_PORT: BOT_PORT,
    ...env,
  });
  return { gw, drachtio };
}

async function answer(drachtio: FakeDrachtio): Promise<DrachtioBot> {
  const bot = await DrachtioBot.answerNext(drachtio);
  cleanups.push(() => bot.close());
  return bot;
}

async function ready(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`);
  return { status: res.status, body: await res.text() };
}

/** A bot that says "stop, escalate": the call is over when Talkdesk has its stop and its socket is closed. */
async function botHangsUp(bot: DrachtioBot, td: FakeTalkdesk): Promise<Record<string, unknown>> {
  bot.bye();
  const { stop } = await td.waitForStop(5_000);
  await td.closed;
  return stop.stop as Record<string, unknown>;
}

describe('metrics', () => {
  it('a scrape during a call shows its RTP, frames and INVITE result moving, and its end counted once', async () => {
    const { gw, drachtio } = await gatewayWithBot();
    const before = await scrape(gw);
    expect(before.value('talkdesk_gw_calls_active')).toBe(0);
    expect(before.text).toMatch(/^talkdesk_gw_process_cpu_seconds_total /m);

    const td = await dialGateway(gw.app.port);
    const bot = await answer(drachtio);
    const audio = td.streamAudio(Buffer.alloc(8000 * 2, 0x7f)); // 2 s of caller audio, in real time
    await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(10);

    const during = await scrape(gw);
    expect(during.value('talkdesk_gw_calls_active')).toBe(1);
    expect(during.value('talkdesk_gw_invite_results_total', { result: '2xx' })).toBe(1);
    expect(during.value('talkdesk_gw_rtp_packets_total', { direction: 'to_bot' })).toBeGreaterThan(0);
    expect(during.value('talkdesk_gw_rtp_packets_total', { direction: 'from_bot' })).toBeGreaterThan(10);
    expect(during.value('talkdesk_gw_rtp_bytes_total', { direction: 'from_bot' })).toBe(
      172 * during.value('talkdesk_gw_rtp_packets_total', { direction: 'from_bot' }),
    );
    expect(during.value('talkdesk_gw_ws_frames_total', { direction: 'in' })).toBeGreaterThan(2);
    expect(during.value('talkdesk_gw_ws_frames_total', { direction: 'out' })).toBeGreaterThan(10);
    expect(during.value('talkdesk_gw_media_clock_lateness_seconds_count')).toBeGreaterThan(0);
    // the caller's 20 ms frames wait in the playout buffer for their pull: at least one frame's worth at some point
    expect(during.value('talkdesk_gw_playout_delay_max_seconds')).toBeGreaterThanOrEqual(0.02);
    expect(during.value('talkdesk_gw_playout_delay_seconds')).toBeGreaterThanOrEqual(0);

    await new Promise((resolve) => setTimeout(resolve, 300));
    const later = await scrape(gw);
    for (const direction of ['to_bot', 'from_bot']) {
      expect(later.value('talkdesk_gw_rtp_packets_total', { direction })).toBeGreaterThan(
        during.value('talkdesk_gw_rtp_packets_total', { direction }),
      );
    }
    expect(later.value('talkdesk_gw_ws_frames_total', { direction: 'out' })).toBeGreaterThan(
      during.value('talkdesk_gw_ws_frames_total', { direction: 'out' }),
    );

    await audio;
    await new Promise((resolve) => setTimeout(resolve, 100)); // the caller has stopped; the call has not
    expect(await botHangsUp(bot, td)).toMatchObject({ command: 'ok' });
    await expect.poll(() => gw.app.registry.size).toBe(0);

    const after = await scrape(gw);
    expect(after.value('talkdesk_gw_calls_active')).toBe(0);
    expect(after.value('talkdesk_gw_calls_total', { outcome: 'ok', cause: 'bot-bye' })).toBe(1);
    expect(after.value('talkdesk_gw_calls_total')).toBe(1);
    expect(after.value('talkdesk_gw_call_setup_seconds_count')).toBe(1);
    expect(after.value('talkdesk_gw_bot_bye_to_stop_seconds_count')).toBe(1);
    // a finished call's counts carry over into the totals: counters never go back
    for (const direction of ['to_bot', 'from_bot']) {
      expect(after.value('talkdesk_gw_rtp_packets_total', { direction })).toBeGreaterThanOrEqual(
        later.value('talkdesk_gw_rtp_packets_total', { direction }),
      );
    }
    expect(after.value('talkdesk_gw_rtp_lost_packets_total', { direction: 'from_bot' })).toBe(0);
    // no caller audio lost; the pulls after the caller's 2 s, while the bot still talked, went out as silence
    expect(after.value('talkdesk_gw_caller_speech_lost_frames_total')).toBe(0);
    expect(after.value('talkdesk_gw_caller_silence_frames_total', { action: 'inserted' })).toBeGreaterThan(0);
    // the summary line carries the new fields
    const [ended] = linesWith(gw.logs, 'call ended');
    // silence left out to take back delay (a frame the clock's move left standing, when the caller's pull was late)
    // is counted in both, the same
    expect(after.value('talkdesk_gw_caller_silence_frames_total', { action: 'removed' })).toBe(
      (ended!.rtp as { callerSilenceRemovedFrames: number }).callerSilenceRemovedFrames,
    );
    expect(ended).toMatchObject({
      outcome: 'ok',
      rtp: { packetsLost: 0, jitterMs: expect.any(Number), callerSpeechLostFrames: 0, maxPlayoutDelayMs: expect.any(Number) },
    });
    expect(ended!.byeToStopMs).toBeGreaterThanOrEqual(0);
    expect(ended!.sendLatenessP99Ms).toEqual(expect.any(Number));
  });

  it('counts refused tokens by reason and rejected INVITEs by status', async () => {
    const { gw, drachtio } = await gatewayWithBot();
    const url = (token: string) =>
      talkdeskUrl({ port: gw.app.port, sipuri: '+1555', token, botId: EXAMPLE_BOT.botId, accountId: 'a', agentassist: false });
    await expect(FakeTalkdesk.connect(url('not-a-jwt'))).rejects.toMatchObject({ status: 401 });
    await expect(FakeTalkdesk.connect(url(makeToken(EXAMPLE_BOT.clientId, 'wrong-secret')))).rejects.toMatchObject({ status: 401 });

    const td = await dialGateway(gw.app.port);
    const invite = await drachtio.next('INVITE', 5_000);
    drachtio.respond(invite, 486, 'Busy Here');
    expect((await td.waitForStop(5_000)).stop.stop).toMatchObject({ command: 'error' });
    await td.closed;
    await expect.poll(() => gw.app.registry.size).toBe(0);

    const m = await scrape(gw);
    expect(m.value('talkdesk_gw_auth_failures_total', { reason: 'token-invalid' })).toBe(2);
    expect(m.value('talkdesk_gw_invite_results_total', { result: '486' })).toBe(1);
    expect(m.value('talkdesk_gw_calls_total', { outcome: 'error', cause: 'sip-486' })).toBe(1);
  });

  it('counts wss certificate reloads by result', async () => {
    const pki = await makeTestPki();
    cleanups.push(() => pki.remove());
    const files = { cert: join(pki.dir, 'live-cert.pem'), key: join(pki.dir, 'live-key.pem') };
    await copyFile(pki.server.cert, files.cert);
    await copyFile(pki.server.key, files.key);
    const { gw } = await gatewayWithBot({ TLS_CERT_FILE: files.cert, TLS_KEY_FILE: files.key });

    expect(await gw.app.reloadCertificate('SIGHUP')).toMatchObject({ ok: true, changed: false });
    await writeFile(files.cert, 'not a certificate');
    expect(await gw.app.reloadCertificate('SIGHUP')).toMatchObject({ ok: false });
    await copyFile(pki.client.cert, files.cert);
    await copyFile(pki.client.key, files.key);
    expect(await gw.app.reloadCertificate('SIGHUP')).toMatchObject({ ok: true, changed: true });

    const m = await scrape(gw);
    expect(m.value('talkdesk_gw_tls_reloads_total', { result: 'unchanged' })).toBe(1);
    // the directory watch may reload too, once the writes have been quiet for 500 ms: at least the SIGHUPs count
    expect(m.value('talkdesk_gw_tls_reloads_total', { result: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(m.value('talkdesk_gw_tls_reloads_total', { result: 'reloaded' })).toBeGreaterThanOrEqual(1);
  });
});

describe('admission: MAX_CALLS', () => {
  it('/ready says 429 at MAX_CALLS=1, a second upgrade gets 503, and the admitted call finishes clean', async () => {
    const { gw, drachtio } = await gatewayWithBot({ MAX_CALLS: '1' });
    expect(await ready(gw.app.port)).toMatchObject({ status: 200 });

    const td = await dialGateway(gw.app.port);
    const bot = await answer(drachtio);
    await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);
    expect(await ready(gw.app.port)).toEqual({ status: 429, body: 'at the call cap: 1 of MAX_CALLS 1\n' });
    expect(await ready(gw.app.metricsPort)).toMatchObject({ status: 429 });

    const refused = await dialGateway(gw.app.port).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(UpgradeRefusedError);
    expect(refused).toMatchObject({ status: 503, body: expect.stringMatching(/MAX_CALLS 1/) });
    expect(drachtio.count('INVITE')).toBe(1);

    // the admitted call never noticed
    const payloadsBefore = td.mediaPayloads().length;
    await expect.poll(() => td.mediaPayloads().length).toBeGreaterThan(payloadsBefore + 5);
    expect(await botHangsUp(bot, td)).toMatchObject({ command: 'ok' });
    await expect.poll(() => gw.app.registry.size).toBe(0);
    expect(await ready(gw.app.port)).toMatchObject({ status: 200 });

    const m = await scrape(gw);
    expect(m.value('talkdesk_gw_calls_total', { outcome: 'rejected', cause: 'max-calls' })).toBe(1);
    expect(m.value('talkdesk_gw_calls_total', { outcome: 'ok' })).toBe(1);
    expect(m.value('talkdesk_gw_calls_max')).toBe(1);
  });

  it('/ready says 503 while the drachtio-server connection is down, and upgrades are refused', async () => {
    const { gw, drachtio } = await gatewayWithBot();
    // a drachtio-server restart: srf reconnects at once (its first retry is 150 ms)
    expect((await scrape(gw)).value('talkdesk_gw_sip_backend_up', { backend: 'drachtio' })).toBe(1);
    drachtio.dropClients();
    await expect.poll(async () => (await ready(gw.app.port)).status).toBe(503);
    expect((await scrape(gw)).value('talkdesk_gw_sip_backend_up', { backend: 'drachtio' })).toBe(0);
    await expect(dialGateway(gw.app.port)).rejects.toMatchObject({ status: 503 });
    await expect.poll(async () => (await ready(gw.app.port)).status, { timeout: 5_000 }).toBe(200);
    expect((await scrape(gw)).value('talkdesk_gw_sip_backend_up', { backend: 'drachtio' })).toBe(1);
  });
});

describe('SIGTERM drain (the handler main.ts installs)', () => {
  const quiet = pino({ level: 'silent' });

  function signals(gw: Gateway, graceMs: number): { send(signal: 'SIGTERM' | 'SIGINT'): void; exit: ReturnType<typeof vi.fn> } {
    const emitter = new EventEmitter();
    const exit = vi.fn();
    exitOnShutdownSignals(emitter, gw.app, { graceMs, log: quiet, exit });
    return { send: (signal) => emitter.emit(signal), exit };
  }

  it('a live call that finishes within the grace ends as the bot says, then the process exits 0', async () => {
    const { gw, drachtio } = await gatewayWithBot();
    const td = await dialGateway(gw.app.port);
    const bot = await answer(drachtio);
    await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);

    const sig = signals(gw, 10_000);
    sig.send('SIGTERM');
    expect(await ready(gw.app.port)).toEqual({ status: 503, body: 'draining\n' });
    await expect(dialGateway(gw.app.port)).rejects.toMatchObject({ status: 503, body: expect.stringMatching(/draining/) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sig.exit).not.toHaveBeenCalled();
    expect(gw.app.registry.size).toBe(1);

    expect(await botHangsUp(bot, td)).toMatchObject({ command: 'ok' });
    await vi.waitFor(() => expect(sig.exit).toHaveBeenCalledWith(0));
    expect(drachtio.dialogCount).toBe(0);
    expect(linesWith(gw.logs, 'call ended').map((l) => l.cause)).toEqual(['bot-bye']);
  });

  it('a call still live when the grace runs out gets stop{error} and a BYE (cause shutdown), then exit 0', async () => {
    const { gw, drachtio } = await gatewayWithBot();
    const td = await dialGateway(gw.app.port);
    await answer(drachtio);
    await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);

    const sig = signals(gw, 800);
    const t0 = performance.now();
    sig.send('SIGTERM');
    const bye = await drachtio.next('BYE', 5_000);
    const { stop, at } = await td.waitForStop(1_000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(790);
    expect(at - t0).toBeGreaterThanOrEqual(790);
    expect(stop.stop).toMatchObject({ command: 'error' });
    expect(bye.sip.get('X-Reason')).toBe('shutdown');
    drachtio.respond(bye, 200, 'OK');
    await vi.waitFor(() => expect(sig.exit).toHaveBeenCalledWith(0), { timeout: 5_000 });
    expect(drachtio.dialogCount).toBe(0);
    expect(linesWith(gw.logs, 'call ended').map((l) => [l.outcome, l.cause])).toEqual([['error', 'shutdown']]);
  });

  /** A call with media flowing, and the gateway draining it after SIGTERM with a grace it will not reach. */
  async function drainingCall(): Promise<{ gw: Gateway; drachtio: FakeDrachtio; td: FakeTalkdesk; sig: ReturnType<typeof signals> }> {
    const { gw, drachtio } = await gatewayWithBot();
    const td = await dialGateway(gw.app.port);
    await answer(drachtio);
    await expect.poll(() => td.mediaPayloads().length, { timeout: 3_000 }).toBeGreaterThan(5);
    const sig = signals(gw, 30_000);
    sig.send('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gw.app.registry.size).toBe(1);
    return { gw, drachtio, td, sig };
  }

  it('a second signal while draining ends the live calls at once', async () => {
    const { drachtio, td, sig } = await drainingCall();
    const t0 = performance.now();
    sig.send('SIGINT');
    const bye = await drachtio.next('BYE', 2_000);
    drachtio.respond(bye, 200, 'OK');
    expect((await td.waitForStop(1_000)).stop.stop).toMatchObject({ command: 'error' });
    await vi.waitFor(() => expect(sig.exit).toHaveBeenCalledWith(0), { timeout: 3_000 });
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('a second signal exits within FORCED_EXIT_MS even when the bot never answers the BYE', async () => {
    const { drachtio, td, sig } = await drainingCall();
    const t0 = performance.now();
    sig.send('SIGTERM');
    const bye = await drachtio.next('BYE', 2_000); // not answered: the bot is gone
    expect((await td.waitForStop(1_000)).stop.stop).toMatchObject({ command: 'error' });
    await vi.waitFor(() => expect(sig.exit).toHaveBeenCalledWith(0), { timeout: FORCED_EXIT_MS + 1_000 });
    expect(performance.now() - t0).toBeLessThan(FORCED_EXIT_MS + 500);
    drachtio.respond(bye, 200, 'OK'); // only so that this test's gateway stops now rather than at the BYE's timeout
  });
});
