import { EventEmitter } from 'node:events';
import type { Call } from '../call/call.js';
import type { CallEnd } from '../call/end.js';

/**
 * The live calls of this process. It holds no state shared between calls, only the set, so that shutdown can end
 * them all and wait for `idle`, and leak checks can see that every call left.
 */
export class CallRegistry extends EventEmitter<{ idle: [] }> {
  private readonly calls = new Map<string, Call>();
  private counter = 0;

  get size(): number {
    return this.calls.size;
  }

  /** the live calls, for the metrics read at scrape time */
  values(): IterableIterator<Call> {
    return this.calls.values();
  }

  nextId(): string {
    return `c${(++this.counter).toString(36)}-${Date.now().toString(36)}`;
  }

  /** Tracks the call until its end has released everything. */
  add(call: Call): void {
    this.calls.set(call.id, call);
    void call.finished.finally(() => {
      this.calls.delete(call.id);
      if (this.calls.size === 0) this.emit('idle');
    });
  }

  /** Ends every live call the same way (shutdown) and resolves when the last one is gone. */
  async endAll(end: CallEnd): Promise<void> {
    await Promise.all([...this.calls.values()].map((call) => call.end(end)));
  }
}
