import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SipLadder } from '../../../../../plugin/operations/probe/sip-ladder.js';
import type { InviteRequest, LegDelegate, SipBackend, SipMessageView } from '../../../../../plugin/sip/backend.js';
import { SipFailure } from '../../../../../plugin/sip/errors.js';

function view(headers: Record<string, string>): SipMessageView {
  return { headers, body: '', get: (n) => headers[n], has: (n) => n in headers };
}

/** A backend whose INVITE the test settles by hand, keeping the delegate the call (through the ladder) gave it. */
function scripted() {
  let delegate: LegDelegate | undefined;
  let settle: { resolve(v: unknown): void; reject(e: unknown): void } | undefined;
  const cancels: number[] = [];
  const backend: SipBackend = {
    name: 'embedded',
    ready: true,
    start: async () => undefined,
    stop: async () => undefined,
    invite(request: InviteRequest) {
      delegate = request.delegate;
      return {
        answered: new Promise((resolve, reject) => (settle = { resolve, reject })) as never,
        cancel: () => cancels.push(1),
      };
    },
  };
  return { backend, delegate: () => delegate!, settle: () => settle!, cancels };
}

const heard: string[] = [];
const callDelegate: LegDelegate = {
  onProgress: (s) => heard.push(`progress ${s}`),
  onBye: (b) => heard.push(`bye ${b.get('X-Escalate') ?? ''}`),
  onRemoteSdp: () => heard.push('sdp'),
  onRefer: () => heard.push('refer'),
};
const request = (): InviteRequest => ({ requestUri: 'sip:+1@bot', fromUser: 'gw', headers: { 'X-Talkdesk-Call-Sid': 'CA1' }, sdp: 'v=0', log: pino({ level: 'silent' }), delegate: callDelegate });

describe('SipLadder', () => {
  it("writes the call's SIP as it passes, and the call still hears everything", async () => {
    heard.length = 0;
    const s = scripted();
    const ladder = new SipLadder(new Set(['user-to-user']));
    let answered = false;
    ladder.onAnswered(() => (answered = true));
    const invite = ladder.watch(s.backend).invite(request());
    s.delegate().onProgress?.(180);
    s.settle().resolve({ callId: 'c1', remoteSdp: 'v=0 answer', hangup: async () => undefined });
    const leg = await invite.answered;
    s.delegate().onBye(view({ 'X-Escalate': 'true', 'User-to-User': 'abcd', Via: 'SIP/2.0/UDP x' }));
    await leg.hangup({ 'X-Reason': 'caller-hangup' });

    expect(answered).toBe(true);
    expect(ladder.answerSdp).toBe('v=0 answer');
    expect(heard).toEqual(['progress 180', 'bye true']);
    expect(ladder.steps.map((x) => [x.dir, x.line, x.headers])).toEqual([
      ['→', 'INVITE sip:+1@bot', { 'X-Talkdesk-Call-Sid': 'CA1' }],
      ['←', '180', undefined],
      ['←', '200 OK (the answer, SDP)', undefined],
      ['→', 'ACK (sent by the backend)', undefined],
      ['←', 'BYE', { 'X-Escalate': 'true', 'User-to-User': 'abcd' }],
      ['→', '200 OK (sent by the backend)', undefined],
      ['→', 'BYE', { 'X-Reason': 'caller-hangup' }],
      ['←', 'BYE answered (or timed out)', undefined],
    ]);
  });

  it('passes a rejection on unchanged, written with its status; a cancel reaches the backend', async () => {
    const s = scripted();
    const ladder = new SipLadder(new Set());
    const invite = ladder.watch(s.backend).invite(request());
    invite.cancel();
    s.settle().reject(SipFailure.rejected(486, 'Busy Here'));
    await expect(invite.answered).rejects.toMatchObject({ kind: 'rejected', status: 486 });
    expect(s.cancels).toEqual([1]);
    expect(ladder.steps.map((x) => `${x.dir} ${x.line}`)).toEqual(['→ INVITE sip:+1@bot', '→ CANCEL', '← 486 Busy Here']);
  });

  it('reports a leg the backend ended as the backend would to a call without onEnded: onBye with no header', async () => {
    heard.length = 0;
    const s = scripted();
    const ladder = new SipLadder(new Set());
    void ladder.watch(s.backend).invite(request()).answered.catch(() => undefined);
    s.delegate().onEnded?.('session-expired');
    expect(heard).toEqual(['bye ']);
    expect(ladder.steps.at(-1)).toMatchObject({ dir: '✗', line: 'the backend ended the leg: session-expired' });
  });
});
