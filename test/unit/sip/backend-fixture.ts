import { EmbeddedSipBackend, type EmbeddedSipBackendOptions } from '../../../plugin/sip/embedded/backend.js';
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

/** The plugin's SDP offer: PCMU, its RTP expected on 127.0.0.1:`rtpPort`. */
export function sdpOffer(rtpPort: number): string {
  return `v=0\r\no=plugin 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${rtpPort} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
}
