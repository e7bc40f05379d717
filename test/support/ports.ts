/**
 * Loopback ports for sipp in tests. The e2e files run two at a time (vitest.config.ts), so every sipp of every file
 * has a slot of its own, and every file's gateways an RTP range of their own (a stray packet from one file's bot must
 * never land in another file's call):
 *
 * - bots (UAS):  slots 0–19 on SIP 5070–5089, media 16000–16190; slots 20–29 on SIP 5120–5129, media 16200–16290
 *   (5090–5099 are the probes', 5110 kamailio's). Slots: calls 0, 2, 3; refer 4; caller-audio 5; early-media 6;
 *   robustness 7; unit sipp.test 8; sipp-scenarios 9; support/sipp.test 10–12; digest 13; proxy 14 (kamailio on
 *   5110); srv-failover 15–17 (16: a target where nothing listens); grafana-dashboard 18; doctor 1, 20, 21 (socat's
 *   TLS port); probe 22–24; baresip 25; 19 is the gateways' default CCAI_SIP_PORT, where nothing listens
 * - probes (UAC, harness self-tests): SIP 5090–5099, media 16500–16590; slots: sipp-scenarios 0, support/sipp.test 3
 *
 * Media ports step by 10 because sipp also binds mediaPort + 2 (video) and pcap play sends from mediaPort + offset.
 */
export interface SippPorts {
  sipPort: number;
  mediaPort: number;
}

export function botPorts(slot: number): SippPorts {
  const n = checkSlot(slot, 29);
  return { sipPort: n < 20 ? 5070 + n : 5120 + (n - 20), mediaPort: 16000 + 10 * n };
}

export function probePorts(slot: number): SippPorts {
  return { sipPort: 5090 + checkSlot(slot, 9), mediaPort: 16500 + 10 * slot };
}

function checkSlot(slot: number, max: number): number {
  if (Number.isInteger(slot) && slot >= 0 && slot <= max) return slot;
  throw new RangeError(`sipp port slot must be 0–${max}, got ${slot}`);
}
