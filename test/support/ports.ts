/**
 * Loopback ports for sipp in tests. Test files run one after another (vitest.config.ts: fileParallelism false), so
 * fixed ports only need to differ between the sipps of one file: each gets its own slot, 0–9.
 *
 * - bots (UAS):  SIP 5070–5079, media 16000–16090
 * - probes (UAC, harness self-tests): SIP 5090–5099, media 16500–16590
 *
 * Media ports step by 10 because sipp also binds mediaPort + 2 (video) and pcap play sends from mediaPort + offset.
 */
export interface SippPorts {
  sipPort: number;
  mediaPort: number;
}

export function botPorts(slot: number): SippPorts {
  return { sipPort: 5070 + checkSlot(slot), mediaPort: 16000 + 10 * slot };
}

export function probePorts(slot: number): SippPorts {
  return { sipPort: 5090 + checkSlot(slot), mediaPort: 16500 + 10 * slot };
}

function checkSlot(slot: number): number {
  if (Number.isInteger(slot) && slot >= 0 && slot <= 9) return slot;
  throw new RangeError(`sipp port slot must be 0–9, got ${slot}`);
}
