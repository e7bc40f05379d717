import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { numericAddress, RtpPortPool, RtpPortsExhaustedError } from '../../../media/port-pool.js';

const open: Socket[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function take(pool: RtpPortPool): Promise<number> {
  const { socket, rtcpSocket, port } = await pool.open();
  open.push(socket, rtcpSocket);
  expect(socket.address().port).toBe(port);
  expect(rtcpSocket.address().port).toBe(port + 1);
  return port;
}

const closeLast = (): Promise<void> => Promise.all(open.splice(-2).map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);

describe('RtpPortPool', () => {
  it('hands out RTP/RTCP pairs (even, odd) of the range, in order, until exhausted', async () => {
    // 43010's RTCP port would be 43011, outside the range
    const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 43001, max: 43010 });
    expect(pool.capacity).toBe(4);
    const ports: number[] = [];
    for (let i = 0; i < 4; i++) ports.push(await take(pool));
    expect(ports).toEqual([43002, 43004, 43006, 43008]);
    expect(pool.inUse).toBe(4);
    await expect(pool.open()).rejects.toThrow(RtpPortsExhaustedError);
    await expect(pool.open()).rejects.toThrow(/no free RTP port: 4 of 4 RTP\/RTCP port pairs in 43001-43010 are in use/);
  });

  it('puts a released port at the back of the queue', async () => {
    const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 43100, max: 43105 });
    const a = await take(pool);
    const b = await take(pool);
    await Promise.all(open.splice(0, 2).map((s) => new Promise<void>((r) => s.close(() => r()))));
    pool.release(a);
    pool.release(a); // twice: ignored
    expect(pool.inUse).toBe(1);
    expect(await take(pool)).toBe(43104); // never used yet, ahead of the released one
    expect(await take(pool)).toBe(a);
    expect(b).toBe(43102);
  });

  it.each([
    ['RTP', 43200],
    ['RTCP', 43201],
  ])('skips a pair whose %s port another socket holds, freeing the half it bound, and tries it again later', async (_what, held) => {
    const squatter = createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(held, '127.0.0.1', () => r()));
    const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 43200, max: 43203 });
    expect(await take(pool)).toBe(43202);
    expect(pool.inUse).toBe(1);
    await expect(pool.open()).rejects.toThrow(/1 of 2 RTP\/RTCP port pairs .* the rest are taken by other processes/);
    await new Promise<void>((r) => squatter.close(() => r()));
    await closeLast();
    pool.release(43202);
    // the pair's other half was closed when the bind failed: the whole pair binds now
    expect(await take(pool)).toBe(43200);
  });

  it('rejects with the bind error when the address is not local', async () => {
    const pool = new RtpPortPool({ bindAddress: '192.0.2.1', min: 43300, max: 43310 });
    await expect(pool.open()).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
    expect(pool.inUse).toBe(0);
  });

  it.each([
    ['a hostname', { bindAddress: 'localhost', min: 40000, max: 40010 }],
    ['min > max', { bindAddress: '127.0.0.1', min: 40010, max: 40000 }],
    ['no even port', { bindAddress: '127.0.0.1', min: 40001, max: 40001 }],
    ['an even port without its odd one', { bindAddress: '127.0.0.1', min: 40000, max: 40000 }],
    ['port 0', { bindAddress: '127.0.0.1', min: 0, max: 10 }],
    ['above 65535', { bindAddress: '127.0.0.1', min: 65534, max: 65536 }],
  ])('refuses %s', (_name, opts) => {
    expect(() => new RtpPortPool(opts)).toThrow(RangeError);
  });
});

describe('numericAddress (the RTP sockets\' lookup)', () => {
  it('answers an IPv4 address before it returns, so a send goes out from the clock step that asked for it', () => {
    const answers: unknown[][] = [];
    numericAddress('192.0.2.7', 4, (...a) => answers.push(a));
    expect(answers).toEqual([[null, '192.0.2.7', 4]]);
  });

  it('refuses a name, as dgram refuses one it cannot resolve', async () => {
    const answers: unknown[][] = [];
    numericAddress('bot.example.com', 4, (...a) => answers.push(a));
    expect((answers[0]![0] as NodeJS.ErrnoException).code).toBe('EINVAL');
    const pool = new RtpPortPool({ bindAddress: '127.0.0.1', min: 43400, max: 43402 });
    const { socket, rtcpSocket } = await pool.open();
    open.push(socket, rtcpSocket);
    const err = await new Promise<Error | null>((resolve) => socket.send(Buffer.from('x'), 9, 'localhost', (e) => resolve(e)));
    expect(err?.message).toMatch(/not an IPv4 address/);
  });
});
