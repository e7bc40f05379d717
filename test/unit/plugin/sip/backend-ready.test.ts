import { afterEach, describe, expect, it, vi } from 'vitest';
import { DrachtioSipBackend } from '../../../../plugin/sip/drachtio/backend.js';
import { EmbeddedSipBackend } from '../../../../plugin/sip/embedded/backend.js';
import { FakeDrachtio } from '../../../support/fake-drachtio.js';
import { testLog } from './fake-uas.js';

// SipBackend.ready is what /ready and the upgrade admission read: can an INVITE go out now?
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('SipBackend.ready', () => {
  it('embedded: false before start, true once its socket is bound, false after stop', async () => {
    const backend = new EmbeddedSipBackend({ bindAddress: '127.0.0.1', port: 0, advertisedAddress: '127.0.0.1', transport: 'udp', log: testLog });
    cleanups.push(() => backend.stop());
    expect(backend.ready).toBe(false);
    await backend.start();
    expect(backend.ready).toBe(true);
    await backend.stop();
    expect(backend.ready).toBe(false);
  });

  it('drachtio: follows the control connection, false while srf reconnects, true again once it is back', async () => {
    const fake = await FakeDrachtio.start();
    cleanups.push(() => fake.close());
    const backend = new DrachtioSipBackend({
      host: '127.0.0.1', port: fake.port, secret: fake.secret, transport: 'udp', log: testLog, retryMaxDelayMs: 200,
    });
    cleanups.push(() => backend.stop());
    expect(backend.ready).toBe(false);
    await backend.start();
    expect(backend.ready).toBe(true);
    fake.dropClients();
    await vi.waitFor(() => expect(backend.ready).toBe(false));
    await vi.waitFor(() => expect(backend.ready).toBe(true), { timeout: 3000 });
    await backend.stop();
    expect(backend.ready).toBe(false);
  });
});
