// @jambonz/node-client-ws 0.2.13 is CommonJS without typings: only what this project calls, as read from its index.js,
// lib/client.js, lib/session.js and lib/utils/validator.js. Both are loaded with config/quiet-require.ts (the validator
// console.logs when first loaded), so these are read as `typeof import(…)`.
declare module '@jambonz/node-client-ws/lib/utils/validator.js' {
  /** never throws: a file the jambonz tooling would refuse comes back with its errors */
  export function validateAppConfig(config: unknown): { isValid: boolean; errors: string[] };
}

declare module '@jambonz/node-client-ws' {
  import type { EventEmitter } from 'node:events';
  import type { WebSocket } from 'ws';

  export { validateAppConfig } from '@jambonz/node-client-ws/lib/utils/validator.js';

  /** lib/client.js: one per service path */
  export interface ServiceClient extends EventEmitter {
    /** the index calls this with each upgraded service socket; it adds the listener that reads the first message */
    handle(ws: WebSocket, path: string): void;
  }

  /** lib/session.js: one per jambonz call on the service's sockets */
  export interface Session extends EventEmitter {
    call_sid?: string;
    msgid: string;
    /** every field of session:new `data` is also copied onto the session */
    [field: string]: unknown;
    say(payload: { text: string }): Session;
    hangup(payload?: { headers?: Record<string, string> }): Session;
    dial(payload: DialVerb): Session;
    send(opts?: { execImmediate?: boolean }): void;
    /** acks the last `verb:hook` with the verbs added since: once in every actionHook handler */
    reply(opts?: { execImmediate?: boolean }): void;
  }

  /** the part of verb-specifications `dial` this project sends */
  export interface DialVerb {
    target: Array<{ type: 'sip'; sipUri: string }>;
    headers: Record<string, string>;
    actionHook: string;
    answerOnBridge: boolean;
  }

  export interface EndpointLogger {
    info(...args: unknown[]): unknown;
    error(...args: unknown[]): unknown;
    debug(...args: unknown[]): unknown;
  }

  export function createEndpoint(opts: {
    /** only `server.on('upgrade', async listener)` is called (and `listen` when given a port, which we never do) */
    server: { on(event: string, listener: unknown): unknown };
    logger: EndpointLogger;
    middlewares: unknown[];
    externalWss: unknown[];
  }): (service: { path: string }) => ServiceClient;
}
