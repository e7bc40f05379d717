import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { rtpPortChecks } from '../../../../../plugin/operations/doctor/rtp-ports.js';
import { configWith, OWN_BOTS } from './fixture.js';

// ports of the doctor's range (36000–36998), apart from its e2e file's 36000–36109
const MIN = 36200;
const held: Socket[] = [];
afterEach(async () => {
  await Promise.all(held.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function hold(port: number): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  held.push(socket);
}

function config(max: number, maxCalls: number, bind = '127.0.0.1') {
  return configWith({ BOTS: OWN_BOTS, RTP_BIND_ADDRESS: bind, RTP_PORT_MIN: String(MIN), RTP_PORT_MAX: String(max), MAX_CALLS: String(maxCalls) }).config;
}

describe('doctor RTP port checks', () => {
  it('a free range holding MAX_CALLS: ✓ both, and every port is released again', async () => {
    expect(await rtpPortChecks(config(MIN + 19, 10))).toEqual([
      { status: 'ok', title: 'RTP ports', detail: `${MIN}–${MIN + 19} on 127.0.0.1: all 10 RTP/RTCP port pairs bind` },
      { status: 'ok', title: 'RTP capacity', detail: '10 port pairs for MAX_CALLS=10' },
    ]);
    await hold(MIN);
    await hold(MIN + 19);
  });

  it('fewer pairs than MAX_CALLS: ✗ capacity with the fix', async () => {
    const [, capacity] = await rtpPortChecks(config(MIN + 9, 6));
    expect(capacity).toEqual({
      status: 'fail',
      title: 'RTP capacity',
      detail: '5 port pairs for MAX_CALLS=6: calls beyond 5 would fail for want of a port',
      fix: 'widen RTP_PORT_MIN–RTP_PORT_MAX to at least 12 ports (two per call), or lower MAX_CALLS',
    });
  });

  it('part of the range held by another process (an RTCP port counts): ⚠ with the count; too few left for MAX_CALLS: ⚠', async () => {
    await hold(MIN);
    await hold(MIN + 3);
    const [ports, capacity] = await rtpPortChecks(config(MIN + 9, 4));
    expect(ports).toMatchObject({ status: 'warn', detail: `${MIN}–${MIN + 9} on 127.0.0.1: 2 of 5 RTP/RTCP port pairs are in use by another process, 3 bind` });
    expect(capacity).toMatchObject({ status: 'warn', detail: '5 port pairs for MAX_CALLS=4, but only 3 are free now' });
  });

  it('an RTP_BIND_ADDRESS that is not this host\'s: ✗ naming it', async () => {
    expect(await rtpPortChecks(config(MIN + 3, 1, '192.0.2.1'))).toEqual([
      { status: 'fail', title: 'RTP ports', detail: `cannot bind ${MIN}–${MIN + 3} on 192.0.2.1 (EADDRNOTAVAIL)`, fix: 'set RTP_BIND_ADDRESS to an address of this host (or 0.0.0.0)' },
    ]);
  });
});
