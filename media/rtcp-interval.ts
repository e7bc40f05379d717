/**
 * RFC 3550 §6.3.1 / A.7: how long until the next RTCP report, in ms. For a call (two members, both may send) at
 * PCMU's bandwidth the bandwidth share is never the limit, so this comes to the minimum interval, 5 s (2.5 s before
 * the first report), spread over [0.5, 1.5] of it so that reports do not synchronise, and divided by e − 3/2 to make up
 * for the spread (A.7's COMPENSATION). Timer reconsideration (§6.3.3) changes nothing with two members and is left out.
 */
export interface IntervalInputs {
  members: number;
  senders: number;
  /** the RTCP share of the session bandwidth, bytes/s */
  rtcpBandwidth: number;
  /** we sent RTP since the report before the last */
  weSent: boolean;
  /** the average compound packet size, UDP and IP headers included (§6.3.3) */
  avgRtcpSize: number;
  /** no report sent yet */
  initial: boolean;
  /** uniform in [0, 1) */
  random: number;
}

/** §6.2: 5 % of the session bandwidth goes to RTCP, a quarter of it to the senders when they are few */
const RTCP_SENDER_FRACTION = 0.25;
const RTCP_MIN_TIME_S = 5;
const COMPENSATION = Math.E - 1.5;

export function rtcpIntervalMs(x: IntervalInputs): number {
  const tMin = x.initial ? RTCP_MIN_TIME_S / 2 : RTCP_MIN_TIME_S;
  let n = x.members;
  let bandwidth = x.rtcpBandwidth;
  if (x.senders <= x.members * RTCP_SENDER_FRACTION) {
    if (x.weSent) {
      bandwidth *= RTCP_SENDER_FRACTION;
      n = x.senders;
    } else {
      bandwidth *= 1 - RTCP_SENDER_FRACTION;
      n -= x.senders;
    }
  }
  const t = Math.max((x.avgRtcpSize * n) / bandwidth, tMin);
  return ((t * (x.random + 0.5)) / COMPENSATION) * 1000;
}
