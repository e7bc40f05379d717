import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AppJson } from '../../../../config/app-json.js';
import { portalSchema } from '../../../../plugin/jambonz/portal-schema.js';
import { apiServerSchemaErrors, validateAppConfig } from './appenv-schema.js';

const shipped = (): AppJson => JSON.parse(readFileSync(join(import.meta.dirname, '../../../../jambonz-app.json'), 'utf8'));
type Entries = Record<string, Record<string, unknown>>;

describe('portalSchema (what OPTIONS on the jambonz service path answers)', () => {
  it('is accepted by node-client-ws validateAppConfig and by the jambonz api-server', () => {
    const { schema, dropped } = portalSchema(shipped(), '/ccai');
    expect(dropped).toEqual([]);
    expect(validateAppConfig(schema)).toEqual({ isValid: true, errors: [] });
    expect(apiServerSchemaErrors(schema)).toEqual([]);
    expect(Object.keys(schema)).toEqual(Object.keys(shipped()));
  });

  it('carries no value at all, and masks the defaults of obscure entries', () => {
    const app = shipped() as Entries;
    app['DRACHTIO_SECRET']!['default'] = 'drachtio-admin-secret';
    app['LISTEN_PORT']!['value'] = 9443;
    app['BOTS']!['value'] = JSON.stringify([{ botId: 'st-1', clientId: 'cs-1', clientSecret: ['rotated-new-secret', 'rotated-old-secret'] }]);
    const schema = portalSchema(app, '/ccai').schema as Entries;
    for (const entry of Object.values(schema)) expect(entry).not.toHaveProperty('value');
    expect(schema['BOTS']).toEqual({
      type: 'string',
      description: expect.any(String),
      uiHint: 'textarea',
      obscure: true,
      required: true,
    });
    expect(schema['DRACHTIO_SECRET']!['default']).toBe('********');
    const text = JSON.stringify(schema);
    expect(text).not.toContain('EXAMPLE-SECRET');
    expect(text).not.toContain('drachtio-admin-secret');
    expect(text).not.toContain('rotated-');
    // what is not secret is shown as is: the portal renders defaults and enums
    expect(schema['LISTEN_PORT']).toMatchObject({ type: 'number', default: 8080 });
    expect(schema['SIP_BACKEND']).toMatchObject({ enum: ['embedded', 'drachtio'], default: 'embedded' });
  });

  it("flattens the service path's own entries over the globals, and leaves out other services' and bad keys", () => {
    const app: AppJson = {
      GREETING: { type: 'string', description: 'global', default: 'hello' },
      '/ccai': {
        GREETING: { type: 'string', description: 'for ccai', default: 'hi' },
        TOKEN: { type: 'string', description: 'secret', obscure: true, value: 'tok-123' },
        'BAD-KEY': { type: 'string', description: 'dash' },
      },
      '/other': { OTHER: { type: 'string', description: 'not ours' } },
    };
    const { schema, dropped } = portalSchema(app, '/ccai');
    expect(schema).toEqual({
      GREETING: { type: 'string', description: 'for ccai', default: 'hi' },
      TOKEN: { type: 'string', description: 'secret', obscure: true },
    });
    expect(dropped).toEqual(['BAD-KEY']);
    expect(apiServerSchemaErrors(schema)).toEqual([]);
  });
});
