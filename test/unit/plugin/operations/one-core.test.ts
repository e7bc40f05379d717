import { describe, expect, it } from 'vitest';
import { oneCoreGcAdvice } from '../../../../plugin/operations/one-core.js';

describe('oneCoreGcAdvice', () => {
  it('tells a process confined to one core without --single-threaded-gc to add it', () => {
    expect(oneCoreGcAdvice(1, [])).toMatch(/--single-threaded-gc/);
    expect(oneCoreGcAdvice(1, ['--max-old-space-size=512'])).toMatch(/one CPU core/);
  });

  it('says nothing with more cores, or with the flag given', () => {
    expect(oneCoreGcAdvice(2, [])).toBeUndefined();
    expect(oneCoreGcAdvice(1, ['--single-threaded-gc'])).toBeUndefined();
  });
});
