import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { CallSummary } from '../../../../plugin/call/call.js';
import { cleanUp, cleanups, harness, stopOf, talkdeskStop, view } from '../../../support/call-harness.js';

/**
 * A call's way out when one of its release steps throws, or one of its handlers does: the steps after it still run
 * (stop to Talkdesk, BYE, the RTP port, the socket), only that call ends, and nothing escapes to the process.
 */

afterEach(cleanUp);

describe('a call whose release step throws', () => {
  it('a farewell drain that throws: stop still reaches Talkdesk, the bot still gets its BYE, port and socket go', async () => {
    const h = await harness();
    const { client, server, call, received } = await h.dial(1);
    const invite = await h.backend.next();
    invite.answer();
    await expect.poll(() => h.ports.inUse).toBe(1);
    // the socket throws on the drain's mark, as a ws in a bad state would
    const send = server.send.bind(server);
    server.send = ((data: string, ...rest: unknown[]) => {
      if (data.includes('"event":"mark"')) throw new Error('socket broke on the mark');
      return (send as (...a: unknown[]) => void)(data, ...rest);
    }) as typeof server.send;

    // the bot transfers: escalate, whose way out is drain → stop → BYE → port → socket
    const bye = (invite.request.delegate.onRefer(view('REFER', { 'Refer-To': '<sip:agents@talkdesk>' })), call.finished);
    const closed = once(client, 'close');
    const summary: CallSummary = await bye;
    await closed;

    expect(summary).toMatchObject({ outcome: 'escalate', cause: 'bot-refer', teardownFailures: ['farewell-drain'] });
    expect(stopOf(received)).toMatchObject({ command: 'escalate' });
    expect(invite.hangups).toHaveLength(1);
    expect(h.ports.inUse).toBe(0);
    expect(h.logs.some((l) => l['msg'] === 'teardown step failed; the others still run' && l['step'] === 'farewell-drain')).toBe(true);
    expect(h.logs.some((l) => l['msg'] === 'call ended')).toBe(true);
  });

  it('a hangup that throws: its port and socket still go, and the other call is untouched', async () => {
    const h = await harness();
    const a = await h.dial(1);
    const inviteA = await h.backend.next();
    inviteA.answer({
      hangup: () => {
        throw new Error('backend bug in hangup()');
      },
    });
    const b = await h.dial(2);
    const inviteB = await h.backend.next();
    inviteB.answer();
    await expect.poll(() => h.ports.inUse).toBe(2);

    a.client.send(talkdeskStop(1));
    const summary = await a.call.finished;
    expect(summary).toMatchObject({ cause: 'talkdesk-stop', teardownFailures: ['bot-legs'] });
    await expect.poll(() => a.client.readyState).toBe(WebSocket.CLOSED);
    expect(h.ports.inUse).toBe(1);

    // b goes on: its socket open, its port held, and it still ends as a call should
    expect(b.client.readyState).toBe(WebSocket.OPEN);
    b.client.send(talkdeskStop(2));
    expect(await b.call.finished).toMatchObject({ cause: 'talkdesk-stop' });
    expect((await b.call.finished).teardownFailures).toBeUndefined();
    expect(inviteB.hangups).toHaveLength(1);
    expect(h.ports.inUse).toBe(0);
  });

  it('a BYE that never settles: the call is let go at its deadline, its port and socket already released', async () => {
    const h = await harness({ teardownDeadlineMs: 800 });
    const { client, call } = await h.dial(1);
    (await h.backend.next()).answer({ hangup: () => new Promise<void>(() => {}) });
    await expect.poll(() => h.ports.inUse).toBe(1);
    const t0 = performance.now();
    client.send(talkdeskStop(1));
    expect(await call.finished).toMatchObject({ cause: 'talkdesk-stop', teardownFailures: ['overran-deadline'] });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(700);
    expect(h.ports.inUse).toBe(0);
    expect(client.readyState).toBe(WebSocket.CLOSED);
    const overran = h.logs.find((l) => l['msg'] === 'teardown overran its deadline: the call is let go');
    expect(overran).toMatchObject({ stillRunning: ['bot-legs'] });
  });

  it('a backend that throws from invite() ends that call with stop{error} and internal-error, and nothing escapes', async () => {
    const h = await harness();
    const escaped: unknown[] = [];
    const onRejection = (reason: unknown): void => void escaped.push(reason);
    process.on('unhandledRejection', onRejection);
    cleanups.push(() => void process.off('unhandledRejection', onRejection));
    h.backend.throwOnInvite = true;
    const { client, call, received } = await h.dial(1);
    expect(await call.finished).toMatchObject({ outcome: 'error', cause: 'internal-error' });
    await expect.poll(() => client.readyState).toBe(WebSocket.CLOSED);
    expect(stopOf(received)).toMatchObject({ command: 'error' });
    expect(h.ports.inUse).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(escaped).toEqual([]);
  });
});
