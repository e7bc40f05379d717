import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The name lookup of our RTP sockets. They send only to numeric addresses (sdp.ts refuses an answer with a name), and
 * bind to one, so dgram's default, dns.lookup, has nothing to look up, but it answers on the next tick: a closure
 * and a queued callback for every packet, and the packet left after the clock's step rather than from it. Answered
 * at once, the send is made where it is asked for. A name is refused as dgram refuses an unresolvable one.
 */
export function numericAddress(address: string, _family: unknown, callback: LookupCallback): void {
  if (isIPv4(address)) callback(null, address, 4);
  else callback(Object.assign(new Error(`RTP address ${address} is not an IPv4 address`), { code: 'EINVAL' }), address, 4);
}

export interface RtpPortPoolOptions {
  /** Local IPv4 address to bind RTP sockets to (0.0.0.0 for all interfaces). */
  bindAddress: string;
  /** Inclusive port range of RTP/RTCP pairs: an even port for RTP, the odd one above it for RTCP (RFC 3550 §11). */
  min: number;
  max: number;
}

export class RtpPortsExhaustedError extends Error {
  override readonly name = 'RtpPortsExhaustedError';
}

/**
 * Hands out bound UDP socket pairs of a fixed range: RTP on an even port, RTCP on the next (RFC 3550 §11). Released ports go to the back of the queue, so a
 * port is reused as late as possible: stray packets of its old call (a bot still sending after BYE) drain away
 * instead of reaching the next call.
 */
export class RtpPortPool {
  private readonly bindAddress: string;
  private readonly min: number;
  private readonly max: number;
  /** FIFO of free ports. Every port is either here or in `busy` (or being bound by open()). */
  private readonly free: number[] = [];
  private freeHead = 0;
  private readonly busy = new Set<number>();
  private readonly total: number;

  constructor(opts: RtpPortPoolOptions) {
    const { bindAddress, min, max } = opts;
    if (!isIPv4(bindAddress)) throw new RangeError(`RtpPortPool: bindAddress must be a numeric IPv4 address, got "${bindAddress}"`);
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
      throw new RangeError(`RtpPortPool: need integers 1 <= min <= max <= 65535, got min=${min} max=${max}`);
    }
    // not push(...ports): a 64,000-port range would be 32,000 call arguments
    for (const port of rtpPairPorts(min, max)) this.free.push(port);
    if (this.free.length === 0) throw new RangeError(`RtpPortPool: range ${min}-${max} holds no RTP/RTCP port pair`);
    this.bindAddress = bindAddress;
    this.min = min;
    this.max = max;
    this.total = this.free.length;
  }

  get inUse(): number {
    return this.busy.size;
  }

  get capacity(): number {
    return this.total;
  }

  /**
   * Binds the next free pair. Pairs another process holds a port of (EADDRINUSE) go to the back of the queue and the
   * next one is tried; rejects with RtpPortsExhaustedError when none is left, or with the bind error for anything else
   * (e.g. a bindAddress that is not local), which no other port would fix.
   */
  async open(): Promise<{ socket: Socket; rtcpSocket: Socket; port: number }> {
    // Each free port is tried at most once per call; concurrent open()s may empty the queue meanwhile.
    const attempts = this.freeCount();
    for (let i = 0; i < attempts && this.freeCount() > 0; i++) {
      const port = this.takeFree();
      this.busy.add(port);
      try {
        return { ...(await bindRtpPair(this.bindAddress, port)), port };
      } catch (err) {
        this.busy.delete(port);
        this.free.push(port);
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    throw new RtpPortsExhaustedError(
      `no free RTP port: ${this.busy.size} of ${this.total} RTP/RTCP port pairs in ${this.min}-${this.max} are in use` +
        (this.busy.size < this.total ? ', the rest are taken by other processes' : ''),
    );
  }

  /** Returns a pair (by its RTP port) whose sockets the caller has closed. Unknown or already released ports are ignored. */
  release(port: number): void {
    if (!this.busy.delete(port)) return;
    this.free.push(port);
  }

  private freeCount(): number {
    return this.free.length - this.freeHead;
  }

  private takeFree(): number {
    const port = this.free[this.freeHead++]!;
    // Compact now and then rather than shift() on every take, which is O(n) on a 10,000-port range.
    if (this.freeHead >= 1024 && this.freeHead * 2 >= this.free.length) {
      this.free.splice(0, this.freeHead);
      this.freeHead = 0;
    }
    return port;
  }

}

/** The RTP ports of a range's RTP/RTCP pairs: each even port whose odd neighbour is in the range too (RFC 3550 §11). */
export function rtpPairPorts(min: number, max: number): number[] {
  const ports: number[] = [];
  for (let p = min % 2 === 0 ? min : min + 1; p + 1 <= max; p += 2) ports.push(p);
  return ports;
}

/**
 * A call's pair as the pool binds it: RTP on `port`, RTCP on the next. Rejects with the first bind error (EADDRINUSE …),
 * the half already bound closed again.
 */
export async function bindRtpPair(address: string, port: number): Promise<{ socket: Socket; rtcpSocket: Socket }> {
  const socket = await bindRtpSocket(address, port);
  try {
    return { socket, rtcpSocket: await bindRtpSocket(address, port + 1) };
  } catch (err) {
    socket.close();
    throw err;
  }
}

/** One UDP socket bound for RTP or RTCP; rejects with the bind error. */
function bindRtpSocket(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', lookup: numericAddress });
    const onError = (err: Error): void => {
      try {
        socket.close();
      } catch {
        // already closed by dgram after the failed bind: nothing left to release
      }
      reject(err);
    };
    socket.once('error', onError);
    // exclusive: under cluster, workers would otherwise share the primary's handle and bind the same port twice.
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
