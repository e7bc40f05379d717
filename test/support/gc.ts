import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// vitest's workers run without --expose-gc; the flag still takes effect for contexts created after it is set
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** True once `ref`'s target has been collected; false if it survives several full collections. */
export async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    if (ref.deref() === undefined) return true;
  }
  return false;
}

/** The V8 heap in use after a full collection: what is really held, not garbage not yet collected. */
export async function heapUsedAfterGc(): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return process.memoryUsage().heapUsed;
}
