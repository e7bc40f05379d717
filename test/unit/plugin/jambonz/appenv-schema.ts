import { createRequire } from 'node:module';

/**
 * The jambonz api-server's rule for the env-var schema an application URL answers on OPTIONS, copied from
 * jambonz-api-server lib/utils/appenv_schemaSchema.json: it refuses the whole schema (the portal then shows no
 * settings) unless this validates.
 */
const APPENV_SCHEMA_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  patternProperties: {
    '^[a-zA-Z0-9_]+$': {
      type: 'object',
      properties: {
        description: { type: 'string' },
        type: { type: 'string', enum: ['string', 'number', 'boolean'] },
        required: { type: 'boolean' },
        default: { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
        enum: { type: 'array' },
        obscure: { type: 'boolean' },
      },
      required: ['type', 'description'],
    },
  },
};

interface AjvInstance {
  compile(schema: unknown): ((data: unknown) => boolean) & { errors?: unknown[] | null };
}

// the api-server uses ajv 8 the same way (`new Ajv()`); ajv comes with node-client-ws, resolved from there
const requireFromClient = createRequire(createRequire(import.meta.url).resolve('@jambonz/node-client-ws'));
const Ajv = requireFromClient('ajv') as { default: new () => AjvInstance };

/** The api-server's errors for `schema`, empty when it would accept it (validateAppEnvSchema). */
export function apiServerSchemaErrors(schema: unknown): unknown[] {
  const validate = new Ajv.default().compile(APPENV_SCHEMA_SCHEMA);
  return validate(schema) ? [] : (validate.errors ?? ['invalid']);
}

export const { validateAppConfig } = createRequire(import.meta.url)('@jambonz/node-client-ws') as {
  validateAppConfig(c: unknown): { isValid: boolean; errors: string[] };
};
