import { DtmfPacketizer, parse } from 'rtp-packet';
import { describe, expect, it } from 'vitest';
import { DtmfReceiver } from '../../../media/dtmf.js';

/** RFC 4733 packets for one key press as a sender emits them: 5 updates every 20 ms, then 3 end packets. */
function keyPress(tone: string, rtpTs: number): Buffer[] {
  const p = new DtmfPacketizer({ ssrc: 0x1234, payloadType: 101, clockRate: 8000 });
  p.startEvent(tone, rtpTs);
  const packets = Array.from({ length: 5 }, () => p.update(20));
  return [...packets, ...p.endEvent(20)];
}

function feed(rx: DtmfReceiver, packets: Buffer[]): void {
  for (const raw of packets) {
    const pkt = parse(raw)!;
    expect(rx.receive(pkt.timestamp, pkt.payload)).toBe(true);
  }
}

function receiver(): { rx: DtmfReceiver; digits: Array<[string, number]> } {
  const digits: Array<[string, number]> = [];
  return { rx: new DtmfReceiver((d, ms) => digits.push([d, ms])), digits };
}

describe('DtmfReceiver', () => {
  it('reports one digit for a key press with 3 end packets, with its duration', () => {
    const { rx, digits } = receiver();
    feed(rx, keyPress('7', 16000));
    expect(digits).toEqual([['7', 120]]);
  });

  it('reports the same digit twice when it is pressed twice (different timestamps)', () => {
    const { rx, digits } = receiver();
    feed(rx, [...keyPress('1', 1000), ...keyPress('1', 9000), ...keyPress('#', 17000)]);
    expect(digits.map(([d]) => d)).toEqual(['1', '1', '#']);
  });

  it('ignores late update packets of an event already reported', () => {
    const { rx, digits } = receiver();
    const packets = keyPress('5', 4000);
    feed(rx, [...packets, packets[2]!]);
    expect(digits).toEqual([['5', 120]]);
  });

  it('reports a digit whose end packets were all lost when the next event starts', () => {
    const { rx, digits } = receiver();
    const lostEnd = keyPress('3', 1000).slice(0, 5); // updates only: 100 ms so far
    feed(rx, lostEnd);
    expect(digits).toEqual([]);
    feed(rx, keyPress('4', 9000));
    expect(digits).toEqual([
      ['3', 100],
      ['4', 120],
    ]);
  });

  it('reports on an end packet alone (the updates were lost)', () => {
    const { rx, digits } = receiver();
    feed(rx, keyPress('9', 2000).slice(5, 6));
    expect(digits).toEqual([['9', 120]]);
  });

  it('handles timestamps above 2^31 and a plain Uint8Array payload', () => {
    const { rx, digits } = receiver();
    rx.receive(0xfffffff0, Uint8Array.of(11, 0x80 | 10, 0x03, 0x20)); // '#', end, 800 ticks
    rx.receive(0xfffffff0, Uint8Array.of(11, 0x80 | 10, 0x03, 0x20));
    expect(digits).toEqual([['#', 100]]);
  });

  it.each([
    ['short payload', Uint8Array.of(1, 0x80, 0)],
    ['event above 15 (not a key)', Uint8Array.of(16, 0x80, 0, 160)],
  ])('returns false for %s and reports nothing', (_name, payload) => {
    const { rx, digits } = receiver();
    expect(rx.receive(100, payload)).toBe(false);
    expect(digits).toEqual([]);
  });
});
