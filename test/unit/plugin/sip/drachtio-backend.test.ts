import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InviteRequest, LegDelegate, OutgoingInvite, SipLeg } from '../../../../plugin/sip/backend.js';
import { DrachtioSipBackend, type DrachtioSipBackendOptions } from '../../../../plugin/sip/drachtio/backend.js';
import { hasTransport, hostportProtocols } from '../../../../plugin/sip/drachtio/hostports.js';
import { capturedLog } from '../../../support/captured-log.js';
import { FakeDrachtio, type BotReceived } from '../../../support/fake-drachtio.js';
import { delegateMock, failureOf, sdpOffer } from './backend-fixture.js';
import { BOT_SDP, testLog } from './fake-uas.js';

const OUR_SDP = sdpOffer(20000);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeDrachtio(opts: Parameters<typeof FakeDrachtio.start>[0] = {}): Promise<FakeDrachtio> {
  const fake = await FakeDrachtio.start(opts);
  cleanups.push(() => fake.close());
  return fake;
}

function backendFor(fake: FakeDrachtio, overrides: Partial<DrachtioSipBackendOptions> = {}): DrachtioSipBackend {
  const backend = new DrachtioSipBackend({
    host: '127.0.0.1',
    port: fake.port,
    secret: fake.secret,
    transport: 'udp',
    log: testLog,
    retryMaxDelayMs: 200,
    ...overrides,
  });
  cleanups.push(() => backend.stop());
  return backend;
}


function inviteRequest(transport = 'udp', delegate: LegDelegate = delegateMock()): InviteRequest {
  return {
    requestUri: `sip:+17345551234@127.0.0.1:5070;transport=${transport}`,
    fromUser: 'talkdesk',
    headers: {},
    sdp: OUR_SDP,
    log: testLog,
    delegate,
  };
}


/** a started backend with an answered call: the leg, the INVITE the bot got, the delegate */
async function answeredCall(): Promise<{ fake: FakeDrachtio; backend: DrachtioSipBackend; leg: SipLeg; invite: BotReceived; delegate: ReturnType<typeof delegateMock> }> {
  const fake = await fakeDrachtio();
  const backend = backendFor(fake);
  await backend.start();
  const delegate = delegateMock();
  const outgoing = backend.invite(inviteRequest('udp', delegate));
  const invite = await fake.next('INVITE');
  fake.respond(invite, 200, 'OK', { body: BOT_SDP });
  await fake.next('ACK');
  return { fake, backend, leg: await outgoing.answered, invite, delegate };
}

describe('hostports', () => {
  it('reads the protocols of drachtio-server\'s CSV', () => {
    expect([...hostportProtocols('udp/10.0.0.5:5060,tcp/10.0.0.5:5060,TLS/10.0.0.5:5061,wss/[::1]:8443')]).toEqual(['udp', 'tcp', 'tls', 'wss']);
    expect(hasTransport('udp/1.2.3.4:5060', 'tls')).toBe(false);
    expect(hasTransport('', 'udp')).toBe(false);
  });
});

describe('DrachtioSipBackend start and stop', () => {
  it('start() resolves once authenticated; stop() ends the control connection', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake);
    await backend.start();
    expect(backend.isConnected).toBe(true);
    expect(fake.authenticatedClients).toBe(1);
    expect(fake.fromApp[0]).toMatch(/^[^|]+\|authenticate\|cymru\|$/);
    await backend.stop();
    await vi.waitFor(() => expect(fake.authenticatedClients).toBe(0));
    expect(backend.isConnected).toBe(false);
  });

  it('a wrong secret rejects start() naming DRACHTIO_SECRET, and srf stops retrying', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake, { secret: 'wrong' });
    await expect(backend.start()).rejects.toThrow(/refused our secret \(check DRACHTIO_SECRET\)/);
    const attempts = fake.fromApp.length;
    await new Promise((resolve) => setTimeout(resolve, 500)); // > two backoff steps
    expect(fake.fromApp.length).toBe(attempts);
  });

  it('a drachtio-server without the CCAI transport rejects start() saying what to bind', async () => {
    const fake = await fakeDrachtio({ hostports: 'udp/127.0.0.1:5060' });
    const backend = backendFor(fake, { transport: 'tls' });
    await expect(backend.start()).rejects.toThrow(/has no tls SIP transport \(it offers udp\/127\.0\.0\.1:5060\).*sips:\*:5061;transport=tls.*cert-file/);
  });

  it('nothing listening rejects start() after the deadline naming DRACHTIO_HOST and DRACHTIO_PORT', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const backend = new DrachtioSipBackend({ host: '127.0.0.1', port, secret: 'x', transport: 'udp', log: testLog, connectTimeoutMs: 400, retryMaxDelayMs: 100 });
    cleanups.push(() => backend.stop());
    await expect(backend.start()).rejects.toThrow(/cannot reach drachtio-server at 127\.0\.0\.1:\d+ .*check DRACHTIO_HOST and DRACHTIO_PORT.*ECONNREFUSED/);
  });

  it('reconnects after drachtio-server drops it; unavailable meanwhile, calls go out again after', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake);
    await backend.start();
    await fake.stopListening();
    await vi.waitFor(() => expect(backend.isConnected).toBe(false));
    expect((await failureOf(backend.invite(inviteRequest()).answered)).kind).toBe('unavailable');
    await fake.listenAgain();
    await vi.waitFor(() => expect(backend.isConnected).toBe(true), { timeout: 3000 });
    const outgoing = backend.invite(inviteRequest());
    fake.respond(await fake.next('INVITE'), 486, 'Busy Here');
    expect((await failureOf(outgoing.answered)).status).toBe(486);
  });

  it('an INVITE pending when the control connection drops rejects `unavailable` (srf would never answer it)', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake);
    await backend.start();
    const outgoing = backend.invite(inviteRequest());
    await fake.next('INVITE');
    fake.dropClients();
    expect((await failureOf(outgoing.answered)).kind).toBe('unavailable');
  });
});

describe('DrachtioSipBackend INVITE', () => {
  it('goes out over the transport its request-URI names, From and Contact on drachtio\'s address', async () => {
    const fake = await fakeDrachtio({ hostports: 'udp/10.0.0.5:5060,tls/10.0.0.5:5061' });
    const backend = backendFor(fake, { transport: 'tls' });
    await backend.start();
    const outgoing: OutgoingInvite = backend.invite(inviteRequest('tls'));
    const invite = await fake.next('INVITE');
    expect(invite.sip.uri).toBe('sip:+17345551234@127.0.0.1:5070;transport=tls');
    expect(invite.sip.get('via')).toMatch(/^SIP\/2\.0\/TLS 10\.0\.0\.5:5061;/);
    expect(invite.sip.get('from')).toMatch(/^sip:talkdesk@10\.0\.0\.5:5061;tag=/);
    outgoing.cancel();
  });

  it('a request-URI without a port (CCAI_SIP_PORT unset) reaches drachtio-server as it is: sofia-sip finds the targets (NAPTR, SRV)', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake);
    await backend.start();
    const outgoing = backend.invite({ ...inviteRequest(), requestUri: 'sip:+17345551234@ccai.example.com;transport=udp' });
    // the fake resolves no names: the INVITE is sent, as asked, and lost on the way
    await vi.waitFor(() => expect(fake.lost).toEqual([{ method: 'INVITE', why: expect.stringContaining('udp ccai.example.com') }]));
    expect(fake.fromApp.join('\n')).toContain('sip:+17345551234@ccai.example.com;transport=udp');
    outgoing.cancel();
  });

  // A sip: Contact without a transport parameter means UDP to whoever opens a new connection to it (RFC 3263 §4.1):
  // a bot's BYE to it would never reach drachtio-server's TCP or TLS listener (issue 13).
  it.each([
    ['tls', 'sip', '<sip:talkdesk@10.0.0.5:5061;transport=tls>'],
    ['tls', 'sips', '<sips:talkdesk@10.0.0.5:5061;transport=tls>'],
    ['tcp', 'sip', '<sip:talkdesk@10.0.0.5:5060;transport=tcp>'],
    ['udp', 'sip', 'sip:talkdesk@10.0.0.5:5060'],
  ])('over %s with a %s: request-URI, our Contact names the transport: %s', async (transport, scheme, contact) => {
    const fake = await fakeDrachtio({ hostports: 'tls/10.0.0.5:5061,tcp/10.0.0.5:5060,udp/10.0.0.5:5060' });
    const backend = backendFor(fake, { transport: transport as 'udp' | 'tcp' | 'tls' });
    await backend.start();
    const request = inviteRequest(transport);
    const outgoing = backend.invite({ ...request, requestUri: request.requestUri.replace(/^sip:/, `${scheme}:`) });
    const invite = await fake.next('INVITE');
    expect(invite.sip.get('contact')).toBe(contact);
    outgoing.cancel();
  });

  it('a drachtio-server refusal rejects `transport` with its reason', async () => {
    const fake = await fakeDrachtio({ hostports: 'udp/127.0.0.1:5060' });
    const backend = backendFor(fake);
    await backend.start();
    const failure = await failureOf(backend.invite(inviteRequest('tcp')).answered);
    expect(failure.kind).toBe('transport');
    expect(failure.message).toMatch(/requested protocol\/transport not available/);
  });

  it('a 2xx without SDP is ACKed and BYEd and rejects as 488, as the embedded backend does', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake);
    await backend.start();
    const outgoing = backend.invite(inviteRequest());
    fake.respond(await fake.next('INVITE'), 200, 'OK');
    await fake.next('ACK');
    const failure = await failureOf(outgoing.answered);
    expect(failure.cause).toBe('sip-488');
    fake.respond(await fake.next('BYE'), 200, 'OK');
  });
});

describe('DrachtioSipBackend dialog', () => {
  it('drachtio-server\'s own BYE (session timer) ends the call through onEnded(session-expired), not onBye', async () => {
    const { fake, leg, invite, delegate } = await answeredCall();
    fake.serverGeneratedBye(invite);
    await vi.waitFor(() => expect(delegate.onEnded).toHaveBeenCalledWith('session-expired'));
    expect(delegate.onBye).not.toHaveBeenCalled();
    await leg.hangup();
    expect(fake.count('BYE')).toBe(1); // drachtio-server's own, none of ours
  });

  it('without onEnded, drachtio-server\'s own BYE is an onBye with nothing that could escalate', async () => {
    const { fake, leg, invite, delegate } = await answeredCall();
    delete (delegate as Partial<typeof delegate>).onEnded;
    fake.serverGeneratedBye(invite);
    await vi.waitFor(() => expect(delegate.onBye).toHaveBeenCalledTimes(1));
    const bye = delegate.onBye.mock.calls[0]![0];
    expect(bye.get('X-Escalate')).toBeUndefined();
    expect(bye.get('Reason')).toBeUndefined();
    expect(bye.get('Call-ID')).toBe(invite.sip.get('call-id'));
    await leg.hangup();
    expect(fake.count('BYE')).toBe(1); // drachtio-server's own, none of ours
  });

  it('answers in-dialog requests explicitly: INFO 200 (reported), OPTIONS 200, REFER 202 (reported), MESSAGE and NOTIFY 501', async () => {
    const { fake, leg, invite, delegate } = await answeredCall();
    const answers: Record<string, number> = {};
    for (const method of ['INFO', 'OPTIONS', 'REFER', 'MESSAGE', 'NOTIFY']) {
      fake.request(invite, method, { headers: method === 'REFER' ? { 'Refer-To': '<sip:agent@example.com>' } : {} });
      await vi.waitFor(() => {
        const answer = fake.received.find((r) => r.sip.type === 'response' && r.sip.get('cseq')?.endsWith(method));
        if (!answer) throw new Error(`no answer to ${method}`);
        answers[method] = answer.sip.status!;
      });
    }
    expect(answers).toEqual({ INFO: 200, OPTIONS: 200, REFER: 202, MESSAGE: 501, NOTIFY: 501 });
    expect(delegate.onInfo).toHaveBeenCalledTimes(1);
    expect(delegate.onRefer).toHaveBeenCalledTimes(1);
    fake.respond(await fake.next('NOTIFY'), 200, 'OK');
    await Promise.all([leg.hangup(), fake.next('BYE').then((bye) => fake.respond(bye, 200, 'OK'))]);
  });

  it('an UPDATE with SDP is answered with ours and reported', async () => {
    const { fake, leg, invite, delegate } = await answeredCall();
    const moved = BOT_SDP.replace('16000', '16004');
    fake.request(invite, 'UPDATE', { body: moved });
    const answer = await fake.next('200');
    expect(answer.sip.body).toBe(OUR_SDP);
    expect(delegate.onRemoteSdp).toHaveBeenCalledWith(moved);
    await Promise.all([leg.hangup(), fake.next('BYE').then((bye) => fake.respond(bye, 200, 'OK'))]);
  });

  it('hangup() resolves when drachtio-server no longer knows the dialog (ENODIALOG is benign)', async () => {
    const { fake, leg } = await answeredCall();
    fake.refuseNext('Server error: unable to find dialog for dialog id provided');
    await expect(leg.hangup({ 'X-Reason': 'talkdesk-stop' })).resolves.toBeUndefined();
    expect(fake.count('BYE')).toBe(0);
  });

  it('a BYE drachtio-server could not deliver (its own 503: the bot\'s Contact refuses TLS) is logged as not delivered, not as done', async () => {
    const { log, lines } = capturedLog();
    const fake = await fakeDrachtio();
    const backend = backendFor(fake, { transport: 'tls' });
    await backend.start();
    const outgoing = backend.invite({ ...inviteRequest('tls'), log });
    // the ACK and the BYE go to the 2xx's Contact, where nothing listens
    fake.respond(await fake.next('INVITE'), 200, 'OK', { body: BOT_SDP, headers: { Contact: '<sip:bot@127.0.0.1:5099;transport=tls>' } });
    const leg = await outgoing.answered;
    await leg.hangup({ 'X-Reason': 'talkdesk-stop' });
    expect(fake.count('BYE')).toBe(0);
    expect(lines.filter((l) => l.msg === 'BYE not delivered to the bot').map((l) => l.outcome)).toEqual(['503 Service Unavailable from drachtio-server itself']);
    expect(lines.filter((l) => l.msg === 'BYE done')).toEqual([]);
  });

  it('after a drachtio-server restart the bot\'s BYE gets 481 from drachtio-server and never reaches the call', async () => {
    const { fake, backend, invite, delegate } = await answeredCall();
    fake.dropClients();
    await vi.waitFor(() => expect(backend.isConnected).toBe(true), { timeout: 3000 });
    fake.request(invite, 'BYE', { headers: { 'X-Escalate': 'true' } });
    expect((await fake.next('481')).sip.get('cseq')).toMatch(/ BYE$/);
    expect(delegate.onBye).not.toHaveBeenCalled();
  });

  it('a bot request whose Via transport is not its connection\'s is dropped by drachtio-server', async () => {
    const { fake, leg, invite, delegate } = await answeredCall();
    fake.request(invite, 'BYE', { viaTransport: 'tcp' });
    expect(fake.lost).toEqual([{ method: 'BYE', why: 'Via check: invalid transport' }]);
    expect(delegate.onBye).not.toHaveBeenCalled();
    await Promise.all([leg.hangup(), fake.next('BYE').then((bye) => fake.respond(bye, 200, 'OK'))]);
  });

  // issue 13, item 1: the contract suite holds the stranger's BYE, REFER, re-INVITE and OPTIONS; these hold the rest
  it('a stranger\'s ACK carrying an SDP is dropped; the bot\'s own ACK is heard', async () => {
    const { fake, leg, invite, delegate } = await answeredCall();
    fake.request(invite, 'INVITE'); // an offerless re-INVITE: our answer's offer is answered in the ACK
    await fake.next('200');
    const attackerSdp = BOT_SDP.replace(/127\.0\.0\.1/g, '127.0.0.2');
    fake.request(invite, 'ACK', { body: attackerSdp, sourceAddress: '127.0.0.2' });
    fake.ack(invite, BOT_SDP);
    await vi.waitFor(() => expect(delegate.onRemoteSdp).toHaveBeenCalledTimes(1));
    expect(delegate.onRemoteSdp).toHaveBeenCalledWith(BOT_SDP);
    await Promise.all([leg.hangup(), fake.next('BYE').then((bye) => fake.respond(bye, 200, 'OK'))]);
  });

  it('the hosts the 2xx\'s Contact and CCAI_SOURCE_ADDRESSES name are the peer too', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake, { ccaiSourceAddresses: ['10.9.0.0/16'] });
    await backend.start();
    const delegate = delegateMock();
    const outgoing = backend.invite(inviteRequest('udp', delegate));
    const invite = await fake.next('INVITE');
    fake.respond(invite, 200, 'OK', { body: BOT_SDP, headers: { Contact: '<sip:bot@127.0.0.1:5070;transport=udp>', 'Record-Route': '<sip:127.0.0.3;lr>' } });
    await outgoing.answered;
    fake.request(invite, 'INFO', { sourceAddress: '10.9.4.4' });
    fake.request(invite, 'INFO', { sourceAddress: '127.0.0.3' });
    fake.request(invite, 'INFO', { sourceAddress: '10.8.4.4' });
    await vi.waitFor(() => expect(fake.count('403')).toBe(1));
    await vi.waitFor(() => expect(delegate.onInfo).toHaveBeenCalledTimes(2));
  });

  it('a stranger is answered 403 once per request, and one log line per 10 s says so', async () => {
    const { log, lines } = capturedLog();
    const fake = await fakeDrachtio();
    const backend = backendFor(fake);
    await backend.start();
    const delegate = delegateMock();
    const outgoing = backend.invite({ ...inviteRequest('udp', delegate), log });
    const invite = await fake.next('INVITE');
    fake.respond(invite, 200, 'OK', { body: BOT_SDP });
    await outgoing.answered;
    for (let i = 0; i < 5; i++) fake.request(invite, 'BYE', { sourceAddress: '127.0.0.2', headers: { 'X-Escalate': 'true' } });
    await vi.waitFor(() => expect(fake.count('403')).toBe(5));
    const refused = lines.filter((l) => String(l.msg).includes('not the dialog\'s peer'));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ method: 'BYE', source: expect.stringMatching(/^127\.0\.0\.2:/) });
    expect(delegate.onBye).not.toHaveBeenCalled();
  });

  it('hangup() resolves after byeTimeoutMs when the BYE is never answered', async () => {
    const fake = await fakeDrachtio();
    const backend = backendFor(fake, { byeTimeoutMs: 100 });
    await backend.start();
    const outgoing = backend.invite(inviteRequest());
    fake.respond(await fake.next('INVITE'), 200, 'OK', { body: BOT_SDP });
    const leg = await outgoing.answered;
    await expect(leg.hangup()).resolves.toBeUndefined();
    expect(fake.count('BYE')).toBe(1);
  });
});
