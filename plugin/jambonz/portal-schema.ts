import { isEntry, maskObscure, type AppJson } from '../../config/app-json.js';

/**
 * The jambonz api-server accepts an application's env-var schema only when every key matches this and nothing else
 * is at the top level (jambonz-api-server lib/utils/appenv_schemaSchema.json: patternProperties +
 * additionalProperties false). A `"/path"` key, valid in a node-client-ws app.json, would make it refuse the whole
 * schema, so the portal would show no settings at all.
 */
export const PORTAL_KEY = /^[a-zA-Z0-9_]+$/;

/**
 * What `OPTIONS <service path>` answers, the way node-client-ws's `getAppConfig` builds it: the global entries plus
 * the service path's own entries (which win), with
 * - obscure entries masked (`maskObscure`: value and default), so no secret and not its length leaves the process;
 * - every `value` removed, obscure or not: `value` is this gateway's own setting, for its operator. The portal needs
 *   the type, description, default and enum to render a field, and what an administrator types there comes back
 *   per application in `session:new` `env_vars`; it must not be pre-filled with, or learn, this host's config.
 * `dropped` names the entries the api-server rule would refuse; they are left out rather than lose the rest.
 */
export function portalSchema(appJson: AppJson, servicePath: string): { schema: AppJson; dropped: string[] } {
  const masked = maskObscure(appJson);
  const own = masked[servicePath];
  const flat: AppJson = { ...global(masked), ...(isObject(own) ? own : {}) };
  const schema: AppJson = {};
  const dropped: string[] = [];
  for (const [key, entry] of Object.entries(flat)) {
    if (!PORTAL_KEY.test(key) || !isEntry(entry)) {
      dropped.push(key);
      continue;
    }
    const { value: _operatorOnly, ...shown } = entry;
    schema[key] = shown;
  }
  return { schema, dropped };
}

function global(appJson: AppJson): AppJson {
  return Object.fromEntries(Object.entries(appJson).filter(([key]) => !key.startsWith('/')));
}

function isObject(x: unknown): x is AppJson {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
