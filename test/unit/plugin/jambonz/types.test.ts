import { createRequire } from 'node:module';
import type { DialVerb, ServiceClient, Session } from '@jambonz/node-client-ws';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { requireQuietly } from '../../../../config/quiet-require.js';

type Index = typeof import('@jambonz/node-client-ws');
type Validator = typeof import('@jambonz/node-client-ws/lib/utils/validator.js');

/**
 * Our typing of @jambonz/node-client-ws (types/jambonz-node-client-ws.d.ts) against the package itself: tsc checks
 * the types; the runtime half checks that what they promise is there, so an upgrade that renames or drops any of it
 * fails here, not in a jambonz call.
 */
describe('@jambonz/node-client-ws typings', () => {
  const index = requireQuietly<Index>('@jambonz/node-client-ws');
  const validator = requireQuietly<Validator>('@jambonz/node-client-ws/lib/utils/validator.js');

  it('createEndpoint takes a stand-in server and makes one ServiceClient per path, which takes upgraded sockets', () => {
    expectTypeOf<Index['createEndpoint']>().returns.returns.toEqualTypeOf<ServiceClient>();
    const listened: string[] = [];
    const makeService = index.createEndpoint({
      server: { on: (event: string) => listened.push(event) },
      logger: { info: () => undefined, error: () => undefined, debug: () => undefined },
      middlewares: [],
      externalWss: [],
    });
    // the one listener it installs is the upgrade listener the stand-in swallows (plugin/jambonz/service.ts)
    expect(listened).toEqual(['upgrade']);
    const service = makeService({ path: '/ccai' });
    expect(typeof service.handle).toBe('function');
    expect(typeof service.on).toBe('function');
  });

  it('a Session has the verbs and the two ways of sending this project uses', () => {
    expectTypeOf<Session['dial']>().parameter(0).toEqualTypeOf<DialVerb>();
    expectTypeOf<Session['say']>().returns.toEqualTypeOf<Session>();
    const SessionClass = createRequire(import.meta.url)('@jambonz/node-client-ws/lib/session.js') as { prototype: Record<string, unknown> };
    for (const method of ['say', 'hangup', 'dial', 'send', 'reply']) expect(typeof SessionClass.prototype[method], method).toBe('function');
  });

  it('the validator module is the one the index re-exports, and reports instead of throwing', () => {
    expectTypeOf<Validator['validateAppConfig']>().returns.toEqualTypeOf<{ isValid: boolean; errors: string[] }>();
    expect(index.validateAppConfig).toBe(validator.validateAppConfig);
    const result = validator.validateAppConfig({ X: { type: 'nonsense' } });
    expect(result.isValid).toBe(false);
    expect(result.errors.length).toBeGreaterThan(0);
  });
});
