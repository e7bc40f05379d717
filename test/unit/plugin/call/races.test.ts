import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUp, harness, stopOf, talkdeskStop, view } from '../../../support/call-harness.js';

/**
 * The races in a call's life, each in well under a second: what arrives while something else is under way must
 * neither strand a leg nor send Talkdesk a second verdict.
 */

afterEach(cleanUp);

describe('a call racing its own end', () => {
  it('Talkdesk closes while the bot rings: the INVITE is cancelled and its port goes back', async () => {
    const h = await harness();
    const { client, call } = await h.dial(1);
    const invite = await h.backend.next();
    await expect.poll(() => h.ports.inUse).toBe(1);
    client.close(1000);
    expect(await call.finished).toMatchObject({ cause: 'talkdesk-closed' });
    expect(invite.cancels).toBe(1);
    expect(invite.hangups).toEqual([]);
    expect(h.ports.inUse).toBe(0);
  });

  it('the call ends as the 2xx comes: the leg gets exactly one BYE, and its port goes back', async () => {
    const h = await harness();
    const { call } = await h.dial(1);
    const invite = await h.backend.next();
    invite.answer(); // the 2xx: the leg takes it on the next turn of the event loop, as the end is under way
    void call.end({ outcome: 'error', cause: 'test-ends-it' });
    await call.finished;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(invite.hangups).toHaveLength(1);
    expect(invite.hangups[0]!['X-Reason']).toMatch(/^(test-ends-it|ended-while-answering)$/);
    expect(h.ports.inUse).toBe(0);
  });

  it('REFER, then the bot hangs up during the farewell drain: one stop{escalate}, and no BYE of ours', async () => {
    const h = await harness();
    const { client, call, received } = await h.dial(1);
    const invite = await h.backend.next();
    invite.answer();
    await expect.poll(() => h.ports.inUse).toBe(1);
    invite.request.delegate.onRefer(view('REFER', { 'Refer-To': '<sip:agents@talkdesk>' }));
    // the drain waits for Talkdesk's mark echo (MARK_TIMEOUT_MS 300 here): the bot's BYE comes meanwhile
    invite.request.delegate.onBye(view('BYE', { 'X-Reason': 'done' }));
    const closed = once(client, 'close');
    expect(await call.finished).toMatchObject({ outcome: 'escalate', cause: 'bot-refer' });
    await closed;
    expect(received.filter((f) => f['event'] === 'stop')).toHaveLength(1);
    expect(stopOf(received)).toMatchObject({ command: 'escalate' });
    expect(invite.hangups).toEqual([]);
    expect(h.ports.inUse).toBe(0);
  });

  it('a start after Talkdesk stopped the stream places no INVITE', async () => {
    const h = await harness();
    const { client, call } = await h.dial(1, { start: false });
    client.send(talkdeskStop(1));
    client.send(JSON.stringify({ event: 'start', sequenceNumber: '1', start: { streamSid: 'MZlate', callSid: 'CAlate' }, streamSid: 'MZlate' }));
    expect(await call.finished).toMatchObject({ cause: 'talkdesk-stop' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.backend.placed).toEqual([]);
    expect(h.ports.inUse).toBe(0);
  });
});
