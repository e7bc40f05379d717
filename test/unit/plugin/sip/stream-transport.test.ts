import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest } from '../../../../plugin/sip/backend.js';
import type { SipFailure } from '../../../../plugin/sip/errors.js';
import type { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import { loopbackBackend, sdpOffer } from './backend-fixture.js';
import { BOT_SDP } from './fake-uas.js';
import { StreamPeer } from './stream-peer.js';
import { capturedLog } from '../../../support/captured-log.js';

// SIP over TCP against a Node TCP peer: one reused connection, framing, the listener behind our Contact, idle close.
const IDLE_MS = 150;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const { log, lines } = capturedLog();
  const backend = loopbackBackend({ transport: 'tcp', log, idleConnectionMs: IDLE_MS, timers: { T1: 10 } });
  await backend.start();
  const peer = await StreamPeer.start();
  cleanups.push(
    () => backend.stop(),
    () => peer.close(),
  );
  const delegate = { onProgress: vi.fn(), onBye: vi.fn(), onRemoteSdp: vi.fn(), onRefer: vi.fn() };
  const request: InviteRequest = {
    requestUri: `sip:+17345551234@127.0.0.1:${peer.port};transport=tcp`,
    fromUser: 'talkdesk',
    headers: {},
    sdp: sdpOffer(20000),
    log,
    delegate,
  };
  return { backend, peer, delegate, request, lines };
}

async function expectAllClosed(backend: EmbeddedSipBackend): Promise<void> {
  await vi.waitFor(() => {
    expect(backend.activeCounts).toEqual({ transactions: 0, dialogs: 0 });
    expect(backend.openConnections).toBe(0);
  }, { timeout: 3000, interval: 20 });
}

describe('EmbeddedSipBackend over TCP', () => {
  it('carries INVITE, ACK and the bot BYE on one connection, never retransmits, and closes it once idle', async () => {
    const s = await setup();
    const outgoing = s.backend.invite(s.request);
    const invite = await s.peer.next('INVITE');
    const port = s.backend.localPort;
    expect(invite.message.sip.get('via')).toMatch(new RegExp(`^SIP/2\\.0/TCP 127\\.0\\.0\\.1:${port};branch=`));
    expect(invite.message.sip.get('contact')).toBe(`<sip:talkdesk@127.0.0.1:${port};transport=tcp>`);
    s.peer.reply(invite, 200, 'OK', BOT_SDP);
    await outgoing.answered;
    const ack = await s.peer.next('ACK');
    expect(ack.socket).toBe(invite.socket);

    s.peer.bye(invite, invite.socket);
    const ok = await s.peer.next('200');
    expect(ok.socket).toBe(invite.socket);
    expect(s.delegate.onBye).toHaveBeenCalledOnce();
    expect(s.peer.sockets).toHaveLength(1);
    // reliable: with T1 = 10 ms an unreliable transport would have re-sent the INVITE several times by now
    expect(s.peer.received.filter((r) => r.message.sip.method === 'INVITE')).toHaveLength(0);

    await once(invite.socket, 'close');
    await expectAllClosed(s.backend);
  });

  it('hears a BYE on a new connection to our Contact and answers it there', async () => {
    const s = await setup();
    const outgoing = s.backend.invite(s.request);
    const invite = await s.peer.next('INVITE');
    s.peer.reply(invite, 200, 'OK', BOT_SDP);
    await outgoing.answered;
    await s.peer.next('ACK');

    const fresh = await s.peer.connectTo(s.backend.localPort);
    s.peer.bye(invite, fresh);
    expect((await s.peer.next('200')).socket).toBe(fresh);
    expect(s.delegate.onBye).toHaveBeenCalledOnce();
    await expectAllClosed(s.backend);
  });

  it('a stream that is not SIP closes its connection with a log line and fails the INVITE waiting on it', async () => {
    const s = await setup();
    const outgoing = s.backend.invite(s.request);
    const invite = await s.peer.next('INVITE');
    invite.socket.write('SIP/2.0 180 Ringing\r\nVia: x\r\n\r\n'); // no Content-Length
    const failure = (await outgoing.answered.catch((e: unknown) => e)) as SipFailure;
    expect(failure.kind).toBe('transport');
    expect(failure.message).toMatch(/not SIP \(no Content-Length/);
    await once(invite.socket, 'close');
    expect(s.lines.some((l) => l.msg === 'SIP stream cannot be framed: connection closed')).toBe(true);
    await expectAllClosed(s.backend);
  });

  it('a refused connection fails the INVITE as transport, naming the settings to check', async () => {
    const s = await setup();
    const closedPort = s.peer.port;
    await s.peer.close();
    const failure = (await s.backend.invite(s.request).answered.catch((e: unknown) => e)) as SipFailure;
    expect(failure.kind).toBe('transport');
    expect(failure.message).toMatch(new RegExp(`TCP connection to 127\\.0\\.0\\.1:${closedPort} failed: ECONNREFUSED; check CCAI_SIP_HOST`));
    await expectAllClosed(s.backend);
  });

  it('stop() closes the listener and every connection', async () => {
    const s = await setup();
    s.backend.invite(s.request);
    const invite = await s.peer.next('INVITE');
    const listener = s.backend.localPort;
    await s.backend.stop();
    await once(invite.socket, 'close');
    expect(s.backend.openConnections).toBe(0);
    await expect(s.peer.connectTo(listener)).rejects.toThrow(/ECONNREFUSED/);
  });
});
