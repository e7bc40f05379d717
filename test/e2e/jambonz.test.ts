import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DIAL_ACTION_HOOK, JAMBONZ_SUBPROTOCOL, NO_TARGET_TEXT } from '../../plugin/jambonz/service.js';
import { makeToken, talkdeskUrl } from '../support/fake-talkdesk.js';
import { upgradeStatus } from '../support/upgrade-status.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { gatewayPerTest } from './gateway-per-test.js';
import { EXAMPLE_BOT } from '../support/talkdesk-call.js';
import { requireTool } from '../support/tools.js';
import { apiServerSchemaErrors, validateAppConfig } from '../unit/plugin/jambonz/appenv-schema.js';

// The jambonz service on its own listener (sip-notes §3.2, §3.4): the portal reads the settings schema with
// OPTIONS on the service path, a jambonz feature-server connects there with subprotocol ws.jambonz.org, and neither
// may disturb the Talkdesk routes or bring the process down.

/** The jambonz service is off by default; these tests turn it on, on its own listener (app.jambonzPort). */
const SERVICE_ON = { JAMBONZ_SERVICE_PATH: '/ccai', JAMBONZ_SERVICE_PORT: '0' };

/** The plugin as main.ts starts it, with the loaded jambonz-app.json, on RTP ports no other test file uses. */
const startGatewayPerTest = gatewayPerTest();
const startGateway = (env: Record<string, string> = {}): Promise<Gateway> =>
  // CCAI_SIP_PORT only becomes the text of jambonz's dial target here: nothing is sent to it
  startGatewayPerTest({ RTP_PORT_MIN: '24000', RTP_PORT_MAX: '24098', CCAI_SIP_PORT: '5070', ...SERVICE_ON, ...env });

/** A jambonz feature-server's socket: open, with every message it receives parsed. */
async function jambonzSocket(port: number, path = '/ccai'): Promise<{ ws: WebSocket; messages: Array<Record<string, unknown>> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, JAMBONZ_SUBPROTOCOL);
  const messages: Array<Record<string, unknown>> = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as Record<string, unknown>));
  await once(ws, 'open');
  expect(ws.protocol).toBe(JAMBONZ_SUBPROTOCOL);
  return { ws, messages };
}

/** What jambonz-feature-server sends first on a call whose hook is a ws URL (node-client-ws lib/client.js reads it). */
function sessionNew(msgid: string, envVars: Record<string, unknown>, to = '+15550002222'): string {
  const callSid = `call-${msgid}`;
  return JSON.stringify({
    type: 'session:new',
    msgid,
    call_sid: callSid,
    hook: '/ccai',
    data: {
      call_sid: callSid,
      account_sid: 'acct-1',
      application_sid: 'app-1',
      direction: 'inbound',
      from: '+15550001111',
      to,
      call_status: 'trying',
      sip_status: 100,
      env_vars: envVars,
    },
  });
}

/** Every byte the server writes back to a raw upgrade request (after `before`, if given), until it closes. */
async function rawUpgrade(port: number, path: string, opts: { headers?: string; before?: string } = {}): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `${opts.before ?? ''}GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${opts.headers ?? ''}\r\n`,
  );
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await once(socket, 'close');
  return text;
}

function goodTalkdeskUrl(port: number): string {
  const token = makeToken(EXAMPLE_BOT.clientId, EXAMPLE_BOT.clientSecret);
  return talkdeskUrl({ port, sipuri: '+17345551234', token, botId: EXAMPLE_BOT.botId, accountId: 'acc' });
}

async function options(port: number, path: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'OPTIONS', headers: { Accept: 'application/json' } });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('the jambonz portal reads the settings with OPTIONS on the service path', () => {
  it('gets the schema as JSON, valid for node-client-ws and the api-server, with no secret and no value in it', async () => {
    const { app } = await startGateway({ DRACHTIO_SECRET: 'drachtio-admin-secret' });
    const res = await options(app.jambonzPort!, '/ccai');
    expect(res).toMatchObject({ status: 200, type: 'application/json' });
    const schema = JSON.parse(res.body) as Record<string, Record<string, unknown>>;
    expect(validateAppConfig(schema)).toEqual({ isValid: true, errors: [] });
    expect(apiServerSchemaErrors(schema)).toEqual([]);
    expect(schema['BOTS']).toMatchObject({ obscure: true, type: 'string' });
    expect(schema['BOTS']).not.toHaveProperty('value');
    expect(schema['DRACHTIO_SECRET']).toMatchObject({ obscure: true, default: '********' });
    expect(res.body).not.toContain(EXAMPLE_BOT.clientSecret);
    expect(res.body).not.toContain('drachtio-admin-secret');
    expect(schema['LISTEN_PORT']).toMatchObject({ type: 'number', default: 8080 });

    expect((await options(app.jambonzPort!, '/ccai/')).status).toBe(200);
    expect((await options(app.jambonzPort!, '/ccai?x=1')).status).toBe(200);
    expect((await options(app.jambonzPort!, '/other')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${app.port}/health`)).status).toBe(200);
  });

  it('JAMBONZ_SERVICE_PATH="" turns the service off: OPTIONS and upgrades there get 404, Talkdesk still works', async () => {
    const { app } = await startGateway({ JAMBONZ_SERVICE_PATH: '' });
    expect(app.jambonzPort).toBeUndefined();
    expect((await options(app.port, '/ccai')).status).toBe(404);
    expect(await upgradeStatus(`ws://127.0.0.1:${app.port}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(404);
    expect(await upgradeStatus(goodTalkdeskUrl(app.port))).toBe(101);
  });
});

/** What jambonz sends when a verb's actionHook fires (feature-server ws-requestor `verb:hook`). */
function verbHook(msgid: string, callSid: string, hook: string, data: Record<string, unknown>): string {
  return JSON.stringify({ type: 'verb:hook', msgid, call_sid: callSid, hook, data });
}

/** the ids every dial carries, for sessionNew(msgid, …) */
const jambonzIds = (msgid: string): Record<string, string> => ({
  'X-Jambonz-Call-Sid': `call-${msgid}`,
  'X-Jambonz-Account-Sid': 'acct-1',
  'X-Jambonz-Application-Sid': 'app-1',
});

function dialAck(msgid: string, sipUri: string, headers: Record<string, string>): Record<string, unknown> {
  return {
    type: 'ack',
    msgid,
    data: [{ verb: 'dial', target: [{ type: 'sip', sipUri }], headers, actionHook: DIAL_ACTION_HOOK, answerOnBridge: true }],
  };
}

/** the shipped jambonz-app.json's CCAI target, what a call with no (or only bad) env_vars dials */
const INSTANCE_TARGET = 'sip:+15550002222@127.0.0.1:5070;transport=udp';

describe('a jambonz call on the service path', () => {
  it("is dialled to the CCAI target its env_vars name, with the jambonz ids; the dial's outcome gets a hangup", async () => {
    const { app, logs } = await startGateway();
    const { ws, messages } = await jambonzSocket(app.jambonzPort!);
    ws.send(
      sessionNew('m-1', {
        BOTS: '[{"clientSecret":"portal-secret"}]',
        CCAI_SIP_HOST: 'ccai.example.com',
        CCAI_SIP_PORT: 5061,
        CCAI_SIP_TRANSPORT: 'tls',
        CCAI_SIP_SCHEME: 'sips',
        SIP_HEADERS: '{"X-Kore-Number":"sipuri","X-Talkdesk-Call-Sid":"callSid"}',
      }),
    );
    await expect.poll(() => messages.length).toBe(1);
    // only the sipuri mapping has a value on a jambonz call: no Talkdesk call sid exists to put in its header
    expect(messages[0]).toEqual(
      dialAck('m-1', 'sips:+15550002222@ccai.example.com:5061;transport=tls', { ...jambonzIds('m-1'), 'X-Kore-Number': '+15550002222' }),
    );
    const [line] = linesWith(logs, 'jambonz call: dialling the CCAI bot');
    expect(line).toMatchObject({
      callSid: 'call-m-1',
      applied: ['CCAI_SIP_HOST', 'CCAI_SIP_PORT', 'CCAI_SIP_TRANSPORT', 'CCAI_SIP_SCHEME', 'SIP_HEADERS'],
      envVars: ['BOTS', 'CCAI_SIP_HOST', 'CCAI_SIP_PORT', 'CCAI_SIP_TRANSPORT', 'CCAI_SIP_SCHEME', 'SIP_HEADERS'],
    });

    ws.send(verbHook('m-1b', 'call-m-1', DIAL_ACTION_HOOK, { dial_call_status: 'completed', dial_sip_status: 200, dial_call_duration: 42 }));
    await expect.poll(() => messages.length).toBe(2);
    expect(messages[1]).toEqual({ type: 'ack', msgid: 'm-1b', data: [{ verb: 'hangup' }] });
    const [ended] = linesWith(logs, 'jambonz dial to the CCAI bot ended: hanging up');
    expect(ended).toMatchObject({ callSid: 'call-m-1', dialCallStatus: 'completed', dialSipStatus: 200, durationS: 42 });
    expect(linesWith(logs, 'jambonz env_var ignored: the instance setting applies')).toEqual([]);
    expect(JSON.stringify(logs)).not.toContain('portal-secret');

    const closed = once(ws, 'close');
    ws.close();
    await closed;
    await expect.poll(() => linesWith(logs, 'jambonz session closed')).toEqual([expect.objectContaining({ callSid: 'call-m-1' })]);
  });

  it('bad env values fall back to the instance settings, each logged naming its setting; the process lives', async () => {
    const { app, logs } = await startGateway();
    const { ws, messages } = await jambonzSocket(app.jambonzPort!);
    ws.send(
      sessionNew('m-6', {
        CCAI_SIP_HOST: 'not a host!',
        CCAI_SIP_PORT: '70000',
        CCAI_SIP_TRANSPORT: 'sctp',
        CCAI_SIP_SCHEME: 'sips', // valid alone, but the transport that applies is udp
        SIP_HEADERS: '{"Via":"sipuri"}',
      }),
    );
    await expect.poll(() => messages.length).toBe(1);
    expect(messages[0]).toEqual(dialAck('m-6', INSTANCE_TARGET, jambonzIds('m-6')));
    const ignored = linesWith(logs, 'jambonz env_var ignored: the instance setting applies').map((l) => String(l['problem']));
    expect(ignored).toEqual([
      expect.stringMatching(/^CCAI_SIP_HOST: must be an IPv4 address or a DNS host name .*"not a host!".*env_vars of jambonz application app-1/),
      expect.stringMatching(/^CCAI_SIP_PORT: must be an integer between 1 and 65535 .*"70000"/),
      expect.stringMatching(/^CCAI_SIP_TRANSPORT: must be one of udp, tcp, tls .*"sctp"/),
      expect.stringMatching(/^SIP_HEADERS: Via is written by the SIP stack itself/),
      expect.stringMatching(/^CCAI_SIP_SCHEME: sips requires CCAI_SIP_TRANSPORT=tls/),
    ]);
    expect(linesWith(logs, 'jambonz call: dialling the CCAI bot')).toEqual([expect.objectContaining({ applied: [] })]);
    expect(await upgradeStatus(goodTalkdeskUrl(app.port))).toBe(101);
    ws.close();
  });

  it('each session gets its own target: one application\'s env_vars change nothing for another', async () => {
    const { app } = await startGateway();
    const a = await jambonzSocket(app.jambonzPort!);
    const b = await jambonzSocket(app.jambonzPort!);
    const c = await jambonzSocket(app.jambonzPort!);
    a.ws.send(sessionNew('m-7', { CCAI_SIP_HOST: '10.0.0.5', CCAI_SIP_TRANSPORT: 'tcp' }));
    await expect.poll(() => a.messages.length).toBe(1);
    b.ws.send(sessionNew('m-8', { CCAI_SIP_HOST: 'bot-b.example.net', CCAI_SIP_PORT: '5080' }, '4000'));
    await expect.poll(() => b.messages.length).toBe(1);
    c.ws.send(sessionNew('m-9', {}));
    await expect.poll(() => c.messages.length).toBe(1);
    expect(a.messages[0]).toEqual(dialAck('m-7', 'sip:+15550002222@10.0.0.5:5070;transport=tcp', jambonzIds('m-7')));
    expect(b.messages[0]).toEqual(dialAck('m-8', 'sip:4000@bot-b.example.net:5080;transport=udp', jambonzIds('m-8')));
    expect(c.messages[0]).toEqual(dialAck('m-9', INSTANCE_TARGET, jambonzIds('m-9')));

    // each session answers its own action hook, whatever order they come in
    b.ws.send(verbHook('m-8b', 'call-m-8', DIAL_ACTION_HOOK, { dial_call_status: 'failed', dial_sip_status: 503 }));
    a.ws.send(verbHook('m-7b', 'call-m-7', DIAL_ACTION_HOOK, { dial_call_status: 'completed', dial_sip_status: 200 }));
    await expect.poll(() => [a.messages.length, b.messages.length]).toEqual([2, 2]);
    expect(b.messages[1]).toEqual({ type: 'ack', msgid: 'm-8b', data: [{ verb: 'hangup' }] });
    expect(a.messages[1]).toEqual({ type: 'ack', msgid: 'm-7b', data: [{ verb: 'hangup' }] });
    for (const s of [a, b, c]) s.ws.close();
  });

  it('a call whose settings make no target is told so and hung up, logged with the env_vars names only', async () => {
    const { app, logs } = await startGateway();
    const { ws, messages } = await jambonzSocket(app.jambonzPort!);
    ws.send(sessionNew('m-10', { BOTS: '[{"clientSecret":"portal-secret"}]' }, 'sip:x@evil'));
    await expect.poll(() => messages.length).toBe(1);
    expect(messages[0]).toEqual({
      type: 'ack',
      msgid: 'm-10',
      data: [
        { verb: 'say', text: NO_TARGET_TEXT },
        { verb: 'hangup', headers: { 'X-Reason': 'no-ccai-target' } },
      ],
    });
    const [line] = linesWith(logs, 'jambonz call has no CCAI target: telling the caller and hanging up');
    expect(line).toMatchObject({ callSid: 'call-m-10', to: 'sip:x@evil', envVars: ['BOTS'] });
    expect(JSON.stringify(logs)).not.toContain('portal-secret');
    ws.close();
    await once(ws, 'close');
  });

  it('a frame ws cannot accept (reserved opcode) closes that socket only: the process lives', async () => {
    const { app, logs } = await startGateway();
    const { ws } = await jambonzSocket(app.jambonzPort!);
    const closed = once(ws, 'close');
    ws.on('error', () => {}); // the client side sees the server's 1002 close as an error too
    // FIN + opcode 0x3 (reserved), masked, empty payload
    (ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.from([0x83, 0x80, 0, 0, 0, 0]));
    await closed;
    await expect.poll(() => linesWith(logs, 'jambonz socket error: closing that socket')).toHaveLength(1);
    expect(await upgradeStatus(goodTalkdeskUrl(app.port))).toBe(101);
    const later = await jambonzSocket(app.jambonzPort!);
    later.ws.send(sessionNew('m-11', {}));
    await expect.poll(() => later.messages.length).toBe(1);
    later.ws.close();
  });

  it('the service path wants the jambonz subprotocol: without it, 400', async () => {
    const { app } = await startGateway();
    expect(await upgradeStatus(`ws://127.0.0.1:${app.jambonzPort!}/ccai`)).toBe(400);
    expect(await upgradeStatus(`ws://127.0.0.1:${app.jambonzPort!}/ccai/`, {}, JAMBONZ_SUBPROTOCOL)).toBe(101);
  });

  it('shutdown closes an open jambonz socket (1001) instead of waiting for it', async () => {
    const gw = await startGateway();
    const { ws } = await jambonzSocket(gw.app.jambonzPort!);
    const closed = once(ws, 'close');
    await gw.app.stop();
    const [code] = (await closed) as [number];
    expect(code).toBe(1001);
  });
});

describe('a malformed first frame on the service socket', () => {
  it.each([
    ['not JSON', 'garbage'],
    ['a session:new without data', '{"type":"session:new","msgid":"m-2"}'],
    ['no msgid', '{"type":"session:new","data":{}}'],
    ['JSON null', 'null'],
  ])('(%s) closes that socket only (1008): the process lives, other sockets go on', async (_name, frame) => {
    const { app, logs } = await startGateway();
    const bystander = await jambonzSocket(app.jambonzPort!);
    const { ws } = await jambonzSocket(app.jambonzPort!);
    const closed = once(ws, 'close');
    ws.send(frame);
    const [code] = (await closed) as [number];
    expect(code).toBe(1008);
    expect(linesWith(logs, 'jambonz socket closed: not a jambonz message')).toHaveLength(1);

    // the socket opened before it, a Talkdesk upgrade and a new jambonz socket all still work
    bystander.ws.send(sessionNew('m-3', {}));
    await expect.poll(() => bystander.messages.length).toBe(1);
    expect(bystander.messages[0]).toMatchObject({ type: 'ack', msgid: 'm-3' });
    expect(await upgradeStatus(goodTalkdeskUrl(app.port))).toBe(101);
    const later = await jambonzSocket(app.jambonzPort!);
    later.ws.send(sessionNew('m-4', {}));
    await expect.poll(() => later.messages.length).toBe(1);
    bystander.ws.close();
    later.ws.close();
  });
});

describe('a jambonz message that makes a listener throw', () => {
  it('closes that socket only (1011)', async () => {
    const { app, logs } = await startGateway();
    const { ws } = await jambonzSocket(app.jambonzPort!);
    const closed = once(ws, 'close');
    // node-client-ws copies every data field onto the Session: these hide its dial() and say() from our handler
    ws.send(JSON.stringify({ type: 'session:new', msgid: 'm-5', call_sid: 'c-5', data: { to: '100', dial: 'shadowed', say: 'shadowed' } }));
    const [code] = (await closed) as [number];
    expect(code).toBe(1011);
    expect(linesWith(logs, 'jambonz message handling failed: closing that socket')).toHaveLength(1);
    expect(await upgradeStatus(goodTalkdeskUrl(app.port))).toBe(101);
  });
});

describe('exactly one handler answers each upgrade', () => {
  it('an unknown path gets one 404 with its reason, and the connection closes', async () => {
    const { app, logs } = await startGateway();
    const reply = await rawUpgrade(app.port, '/nope');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(reply).toMatch(/^HTTP\/1\.1 404 Not Found\r\n[\s\S]*\r\n\r\nunknown path\n$/);
    expect(linesWith(logs, 'upgrade refused: unknown path')).toEqual([expect.objectContaining({ path: '/nope' })]);
  });

  it('a GET pipelined before an upgrade costs only that connection (node-client-ws would reject unhandled)', async () => {
    const { app } = await startGateway();
    const headers = `Sec-WebSocket-Protocol: ${JAMBONZ_SUBPROTOCOL}\r\n`;
    for (const [port, path, before] of [
      [app.port, '/nope', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
      [app.port, '/ccai', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
      [app.jambonzPort!, '/other', 'GET /ccai HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ] as const) {
      const reply = await rawUpgrade(port, path, { before, headers });
      expect(reply).toMatch(/^HTTP\/1\.1 (200 OK|404 Not Found)\r\n/);
    }
    expect(await upgradeStatus(goodTalkdeskUrl(app.port))).toBe(101);
    expect(await upgradeStatus(`ws://127.0.0.1:${app.jambonzPort!}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(101);
  });

  it('a Talkdesk path without a token gets one 400, a bad token one 401, with reasons', async () => {
    const { app } = await startGateway();
    const missing = await rawUpgrade(app.port, '/audiosocket/talkdesk/?botId=x');
    expect(missing.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(missing).toMatch(/^HTTP\/1\.1 400 /);
    const badUrl = goodTalkdeskUrl(app.port).replace(/token=[^&]+/, `token=${makeToken(EXAMPLE_BOT.clientId, 'wrong')}`);
    const bad = await rawUpgrade(app.port, badUrl.slice(badUrl.indexOf('/audiosocket')));
    expect(bad.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(bad).toMatch(/^HTTP\/1\.1 401 /);
  });
});

describe('Talkdesk over wss, the jambonz service on its own plain listener', () => {
  let dir: string;
  let ca: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jambonz-wss-'));
    await promisify(execFile)(requireTool('openssl'), [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ]);
    ca = await readFile(join(dir, 'cert.pem'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a bad token gets 401, a good one opens; /ccai on the wss port is 404, the portal reads the schema on the service port', async () => {
    const { app } = await startGateway({ TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') });
    const good = goodTalkdeskUrl(app.port).replace('ws://', 'wss://');
    const bad = good.replace(/token=[^&]+/, `token=${makeToken(EXAMPLE_BOT.clientId, 'wrong')}`);
    expect(await upgradeStatus(bad, { ca })).toBe(401);
    expect(await upgradeStatus(good, { ca })).toBe(101);
    expect(await upgradeStatus(`wss://127.0.0.1:${app.port}/ccai`, { ca }, JAMBONZ_SUBPROTOCOL)).toBe(404);
    expect(await upgradeStatus(`ws://127.0.0.1:${app.jambonzPort!}/ccai`, {}, JAMBONZ_SUBPROTOCOL)).toBe(101);
    expect((await options(app.jambonzPort!, '/ccai')).status).toBe(200);

    const status = await new Promise<number | undefined>((resolve, reject) => {
      https
        .request({ host: '127.0.0.1', port: app.port, path: '/ccai', method: 'OPTIONS', ca }, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(404);
  });
});
