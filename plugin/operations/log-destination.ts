import { pino } from 'pino';

/**
 * Log lines held while the log's reader is behind (4 MB: some 8,000 lines, the start and end of 2,000 calls). Past
 * it, lines are dropped and counted, not held: a stalled reader must not cost the gateway unbounded memory.
 */
const LOG_BUFFER_BYTES = 4 * 1024 * 1024;

export interface LogDestination {
  stream: ReturnType<typeof pino.destination>;
  /** lines dropped because the reader was this far behind */
  droppedLines(): number;
}

/**
 * Where pino writes (stdout by default): asynchronously, from a bounded buffer. pino's default writes each line with
 * a blocking write(2): when stdout is a pipe whose reader stops (a log shipper that hangs, a full pipe to journald),
 * that write waits for it, and with it every call's media on this event loop, for as long as the reader takes.
 * pino flushes what is buffered when the process exits.
 */
export function logDestination(dest: number | string = 1, maxBytes = LOG_BUFFER_BYTES): LogDestination {
  let dropped = 0;
  const stream = pino.destination({ dest, sync: false, maxLength: maxBytes });
  stream.on('drop', (data: string) => {
    for (let i = data.indexOf('\n'); i >= 0; i = data.indexOf('\n', i + 1)) dropped++;
  });
  return { stream, droppedLines: () => dropped };
}
