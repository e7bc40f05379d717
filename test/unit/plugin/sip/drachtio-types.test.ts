import Srf from 'drachtio-srf/lib/srf.js';
import SipError from 'drachtio-srf/lib/sip_error.js';
import { describe, expectTypeOf, it } from 'vitest';
import type { SipMessageView } from '../../../../plugin/sip/backend.js';

/**
 * Our typing of drachtio-srf (types/drachtio-srf.d.ts) says what srf 5.0.29 does, where its bundled typings do not
 * (sip-notes §1.1). tsc checks these; the runtime half checks the typed paths are the real modules.
 */
describe('drachtio-srf typings', () => {
  it('connect() gives nothing to await: success is the authenticated connect event', () => {
    expectTypeOf<Srf['connect']>().returns.toBeVoid();
    expectTypeOf<Parameters<Srf['createUAC']>[2]>().exclude<undefined>().toHaveProperty('cbRequest');
    type CbRequest = NonNullable<NonNullable<Parameters<Srf['createUAC']>[2]>['cbRequest']>;
    expectTypeOf<Parameters<CbRequest>[0]>().toEqualTypeOf<Error | null>();
  });

  it('a BYE srf hands over is a SipMessageView, and SipError carries the status', () => {
    expectTypeOf<Srf.Request>().toExtend<SipMessageView>();
    expectTypeOf<SipError['status']>().toBeNumber();
    expectTypeOf<ReturnType<Srf.Dialog['destroy']>>().toEqualTypeOf<Promise<Srf.Request>>();
    expectTypeOf(new SipError(486, 'Busy Here')).toHaveProperty('reason');
  });

  it('the typed lib/ paths are the modules srf itself uses', async () => {
    const main = (await import('drachtio-srf')).default as unknown as typeof Srf;
    expectTypeOf(main).not.toBeAny();
    if (main !== Srf || (main as unknown as { SipError: unknown }).SipError !== SipError) throw new Error('drachtio-srf/lib/srf.js is not the package main');
  });
});
