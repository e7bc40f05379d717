import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { AUTHORITATIVE_ANSWER, decode, encode, type Answer, type Question } from 'dns-packet';

/** a dns-packet answer without its name (each kind of record keeps its own data type) */
type Unnamed<A> = A extends Answer ? Omit<A, 'name'> : never;

/** What the server publishes: records by name (lower case), as dns-packet answers without their name. */
export type Zone = Record<string, Array<Unnamed<Answer>>>;

/** RCODE 3 (RFC 1035 §4.1.1): the name does not exist */
const NXDOMAIN = 3;

export interface DnsServer {
  /** `127.0.0.1:<port>`, for CCAI_DNS_SERVERS */
  readonly address: string;
  /** every question asked, `TYPE name`, in order: what the resolver looked up */
  readonly questions: string[];
  close(): Promise<void>;
}

/**
 * A DNS server over UDP on loopback for the e2e tests, so the gateway's RFC 3263 lookups run through node's real
 * resolver: it answers each question with the zone's records of that name and type (authoritative), NOERROR with no
 * answer for a name it has under another type, NXDOMAIN for a name it does not have.
 */
export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const questions: string[] = [];
  socket.on('message', (message, from) => {
    let query;
    try {
      query = decode(message);
    } catch {
      return;
    }
    const question = query.questions?.[0] as Question | undefined;
    if (question === undefined) return;
    questions.push(`${question.type} ${question.name}`);
    const records = zone[question.name.toLowerCase()];
    const answers = (records ?? []).filter((r) => r.type === question.type).map((r) => ({ ...r, name: question.name }) as Answer);
    const reply = encode({
      id: query.id,
      type: 'response',
      flags: (records === undefined ? NXDOMAIN : 0) | AUTHORITATIVE_ANSWER,
      questions: [question],
      answers,
    });
    socket.send(reply, from.port, from.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    address: `127.0.0.1:${socket.address().port}`,
    questions,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
