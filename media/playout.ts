/** μ-law encodes silence (zero amplitude) as 0xFF. */
const MULAW_SILENCE = 0xff;
/** G.711 at 8 kHz: one byte per sample, 8 samples per ms. */
const BYTES_PER_MS = 8;

export interface PlayoutBufferOptions {
  /** Bytes per frame; 160 = 20 ms of PCMU. */
  frameBytes?: number;
  /** Most audio held; beyond it the oldest is dropped so a sender running fast cannot build up delay. */
  maxMs?: number;
}

export interface PlayoutStats {
  framesOut: number;
  /** Frames that were short of audio and were padded with silence, in part or whole (underruns). */
  silenceFrames: number;
  /** Oldest audio discarded because the buffer was over maxMs. */
  droppedBytes: number;
  /** Deepest the buffer has been right after a push. */
  maxDepthBytes: number;
}

/**
 * Re-chunks caller audio, which arrives in whatever chunk sizes Talkdesk sends, into exact RTP frames. Pure (no
 * timers, no I/O): the media clock pulls one frame per tick. A fixed ring holds the audio, so push and pull only copy.
 */
export class PlayoutBuffer {
  readonly stats: PlayoutStats = { framesOut: 0, silenceFrames: 0, droppedBytes: 0, maxDepthBytes: 0 };
  private readonly frameBytes: number;
  /** A Buffer for its copy(), which moves bytes without allocating the views that set(subarray) would. */
  private readonly ring: Buffer;
  private head = 0;
  private depth = 0;

  constructor(opts: PlayoutBufferOptions = {}) {
    this.frameBytes = opts.frameBytes ?? 160;
    const maxMs = opts.maxMs ?? 60;
    if (!Number.isInteger(this.frameBytes) || this.frameBytes < 1) {
      throw new RangeError(`PlayoutBuffer: frameBytes must be a positive integer, got ${this.frameBytes}`);
    }
    const capacity = Math.floor(maxMs * BYTES_PER_MS);
    if (!(capacity >= this.frameBytes)) {
      throw new RangeError(`PlayoutBuffer: maxMs ${maxMs} holds less than one ${this.frameBytes}-byte frame`);
    }
    this.ring = Buffer.alloc(capacity);
  }

  get depthBytes(): number {
    return this.depth;
  }

  /** Appends audio; if that goes over maxMs, the oldest bytes (already buffered or at the front of this chunk) go. */
  push(mulaw: Uint8Array): void {
    const cap = this.ring.length;
    let src = mulaw;
    if (src.length >= cap) {
      this.stats.droppedBytes += this.depth + src.length - cap;
      this.head = 0;
      this.depth = 0;
      src = src.subarray(src.length - cap);
    } else if (this.depth + src.length > cap) {
      const excess = this.depth + src.length - cap;
      this.stats.droppedBytes += excess;
      this.head = (this.head + excess) % cap;
      this.depth -= excess;
    }
    const tail = (this.head + this.depth) % cap;
    if (src.length <= cap - tail) {
      this.ring.set(src, tail);
    } else {
      const firstPart = cap - tail;
      this.ring.set(src.subarray(0, firstPart), tail);
      this.ring.set(src.subarray(firstPart), 0);
    }
    this.depth += src.length;
    if (this.depth > this.stats.maxDepthBytes) this.stats.maxDepthBytes = this.depth;
  }

  /** A new frame: buffered audio, padded with silence if there is not enough (counted as an underrun). */
  pull(): Buffer {
    const frame = Buffer.allocUnsafe(this.frameBytes);
    this.pullInto(frame, 0);
    return frame;
  }

  /**
   * Writes one frame into `target` at `offset` instead of allocating one, so the RTP sender can fill the packet it
   * is about to send directly: one allocation per packet instead of two.
   */
  pullInto(target: Uint8Array, offset: number): void {
    const cap = this.ring.length;
    const n = Math.min(this.depth, this.frameBytes);
    const firstPart = Math.min(n, cap - this.head);
    this.ring.copy(target, offset, this.head, this.head + firstPart);
    if (firstPart < n) this.ring.copy(target, offset + firstPart, 0, n - firstPart);
    this.head = (this.head + n) % cap;
    this.depth -= n;
    if (n < this.frameBytes) {
      target.fill(MULAW_SILENCE, offset + n, offset + this.frameBytes);
      this.stats.silenceFrames++;
    }
    this.stats.framesOut++;
  }

  /** Drops everything buffered (not counted as dropped: the caller chose to, e.g. on a barge-in or hold). */
  clear(): void {
    this.head = 0;
    this.depth = 0;
  }
}
