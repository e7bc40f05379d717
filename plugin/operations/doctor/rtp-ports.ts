import type { PluginConfig } from '../../../config/schema.js';
import { bindRtpPair, rtpPairPorts } from '../../../media/port-pool.js';
import { fail, ok, warn, type Check } from './check.js';

/** pairs bound at once: fast on a 10,000-port range, and far below a 1024-descriptor ulimit */
const PAIRS_AT_ONCE = 64;

type PairOutcome = { bound: true } | { bound: false; code: string };

/**
 * Binds every RTP/RTCP pair of RTP_PORT_MIN–RTP_PORT_MAX on RTP_BIND_ADDRESS as a call would (media/port-pool.ts),
 * releasing each at once, and counts the pairs another process holds. Then whether the range holds MAX_CALLS
 * calls. A gateway already running holds only its live calls' ports, so on an idle one every pair binds.
 */
export async function rtpPortChecks(config: PluginConfig): Promise<Check[]> {
  const { bindAddress, portMin, portMax } = config.rtp;
  const { maxCalls } = config.limits;
  const range = `${portMin}–${portMax} on ${bindAddress}`;
  const ports = rtpPairPorts(portMin, portMax);
  const outcomes: PairOutcome[] = [];
  for (let i = 0; i < ports.length; i += PAIRS_AT_ONCE) {
    outcomes.push(...(await Promise.all(ports.slice(i, i + PAIRS_AT_ONCE).map((port) => tryPair(bindAddress, port)))));
  }
  const other = outcomes.find((o): o is { bound: false; code: string } => !o.bound && o.code !== 'EADDRINUSE');
  if (other) {
    const fix = other.code === 'EADDRNOTAVAIL' ? 'set RTP_BIND_ADDRESS to an address of this host (or 0.0.0.0)' : 'check RTP_BIND_ADDRESS, RTP_PORT_MIN and RTP_PORT_MAX';
    return [fail('RTP ports', `cannot bind ${range} (${other.code})`, fix)];
  }
  const free = outcomes.filter((o) => o.bound).length;
  const inUse = ports.length - free;
  const checks: Check[] = [];
  const moveFix = `stop what holds them (ss -ulpn shows it), or move RTP_PORT_MIN–RTP_PORT_MAX to a free range`;
  if (free === 0) checks.push(fail('RTP ports', `${range}: all ${ports.length} RTP/RTCP port pairs are in use by another process`, moveFix));
  else if (inUse > 0) checks.push(warn('RTP ports', `${range}: ${inUse} of ${ports.length} RTP/RTCP port pairs are in use by another process, ${free} bind`, moveFix));
  else checks.push(ok('RTP ports', `${range}: all ${ports.length} RTP/RTCP port pairs bind`));

  const widen = `widen RTP_PORT_MIN–RTP_PORT_MAX to at least ${2 * maxCalls} ports (two per call), or lower MAX_CALLS`;
  if (ports.length < maxCalls) {
    checks.push(fail('RTP capacity', `${ports.length} port pairs for MAX_CALLS=${maxCalls}: calls beyond ${ports.length} would fail for want of a port`, widen));
  } else if (free < maxCalls && free > 0) {
    checks.push(warn('RTP capacity', `${ports.length} port pairs for MAX_CALLS=${maxCalls}, but only ${free} are free now`, moveFix));
  } else if (free > 0) {
    checks.push(ok('RTP capacity', `${ports.length} port pairs for MAX_CALLS=${maxCalls}`));
  }
  return checks;
}

async function tryPair(address: string, port: number): Promise<PairOutcome> {
  try {
    const { socket, rtcpSocket } = await bindRtpPair(address, port);
    await Promise.all([socket, rtcpSocket].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    return { bound: true };
  } catch (err) {
    return { bound: false, code: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}
