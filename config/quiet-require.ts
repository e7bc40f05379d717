import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * `require()` with console.log muted. @jambonz/node-client-ws's validator (loaded by its index too) prints
 * "Loading schema from …" when first required: on stdout, ahead of the JSON log lines, that would break every log
 * shipper that parses them.
 */
export function requireQuietly<T>(id: string): T {
  const log = console.log;
  console.log = () => {};
  try {
    return require(id) as T;
  } finally {
    console.log = log;
  }
}
