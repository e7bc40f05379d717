import { expect, vi } from 'vitest';
import type { LegDelegate } from '../../../../plugin/sip/backend.js';
import { EmbeddedSipBackend, type EmbeddedSipBackendOptions } from '../../../../plugin/sip/embedded/backend.js';
import { SipFailure } from '../../../../plugin/sip/errors.js';
import { testLog } from './fake-uas.js';

/** An EmbeddedSipBackend on an ephemeral loopback UDP port, not yet started; `overrides` for what a test varies. */
export function loopbackBackend(overrides: Partial<EmbeddedSipBackendOptions> = {}): EmbeddedSipBackend {
  return new EmbeddedSipBackend({
    bindAddress: '127.0.0.1',
    port: 0,
    advertisedAddress: '127.0.0.1',
    transport: 'udp',
    log: testLog,
    ...overrides,
  });
}

/** An SDP of `user` (the plugin's offer by default): PCMU, its RTP expected on 127.0.0.1:`rtpPort`. */
export function sdpOffer(rtpPort: number, user = 'plugin'): string {
  return `v=0\r\no=${user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${rtpPort} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
}

/** A LegDelegate whose every callback is a mock, to see what the backend reported. */
export function delegateMock() {
  return {
    onProgress: vi.fn<NonNullable<LegDelegate['onProgress']>>(),
    onBye: vi.fn<LegDelegate['onBye']>(),
    onRemoteSdp: vi.fn<LegDelegate['onRemoteSdp']>(),
    onInfo: vi.fn<NonNullable<LegDelegate['onInfo']>>(),
    onRefer: vi.fn<LegDelegate['onRefer']>(),
    onEnded: vi.fn<NonNullable<LegDelegate['onEnded']>>(),
  };
}

/** The SipFailure `promise` rejects with; fails the test if it resolves or rejects with anything else. */
export async function failureOf(promise: Promise<unknown>): Promise<SipFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SipFailure);
  return err as SipFailure;
}
