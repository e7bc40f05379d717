import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import { failureOf, loopbackBackend } from './backend-fixture.js';
import { FakeUas } from './fake-uas.js';

let backend: EmbeddedSipBackend | undefined;
let uas: FakeUas | undefined;
afterEach(async () => {
  await backend?.stop();
  await uas?.close();
  backend = uas = undefined;
});

describe('EmbeddedSipBackend.options', () => {
  it('sends one out-of-dialog OPTIONS and resolves with the final answer, its agent and round trip', async () => {
    backend = loopbackBackend();
    await backend.start();
    uas = await FakeUas.start();
    const answer = backend.options(`sip:127.0.0.1:${uas.port};transport=udp`, 'doctor');
    const options = await uas.next('OPTIONS');
    expect(options.message.sip.uri).toBe(`sip:127.0.0.1:${uas.port};transport=udp`);
    expect(options.message.sip.get('to')).toBe(`<sip:127.0.0.1:${uas.port}>`);
    expect(options.message.sip.get('from')).toMatch(/^<sip:doctor@127\.0\.0\.1:\d+>;tag=/);
    expect(options.message.toTag).toBeUndefined();
    uas.reply(options, 100, 'Trying');
    uas.reply(options, 404, 'Not Here', { headers: ['Server: kore-sbc'] });
    const result = await answer;
    expect(result).toMatchObject({ status: 404, reason: 'Not Here', agent: 'kore-sbc' });
    expect(result.ms).toBeGreaterThanOrEqual(0);
    expect(result.ms).toBeLessThan(1000);
  });

  it('rejects as a timeout at Timer F when nothing answers, after retransmitting on UDP', async () => {
    backend = loopbackBackend({ timers: { T1: 20, F: 300 } });
    await backend.start();
    uas = await FakeUas.start();
    const failure = await failureOf(backend.options(`sip:127.0.0.1:${uas.port}`, 'doctor'));
    expect(failure.kind).toBe('timeout');
    expect(failure.message).toBe('no final response to OPTIONS within 300 ms (Timer F)');
    expect(uas.count('OPTIONS')).toBeGreaterThan(1);
  });

  it('rejects as a transport failure for a host that does not resolve, and as unavailable before start()', async () => {
    backend = loopbackBackend();
    expect((await failureOf(backend.options('sip:127.0.0.1:5060', 'doctor'))).kind).toBe('unavailable');
    await backend.start();
    const failure = await failureOf(backend.options('sip:ccai.invalid:5060', 'doctor'));
    expect(failure.kind).toBe('transport');
    expect(failure.message).toMatch(/^DNS lookup of ccai\.invalid failed/);
  });
});
