import { expect } from 'vitest';
import type { FakeTalkdesk } from '../support/fake-talkdesk.js';
import { linesWith, type Gateway } from '../support/gateway.js';
import { expectSippSuccess, type SippProcess, type SippResult } from '../support/sipp.js';

/** Once the bot has answered, Talkdesk stops the stream; resolves with the sipp bot's run, which must be clean. */
export async function stopOnceAnswered(gw: Gateway, td: FakeTalkdesk, sipp: SippProcess): Promise<SippResult> {
  await expect.poll(() => linesWith(gw.logs, 'bot answered').length, { timeout: 5_000 }).toBe(1);
  td.sendStop();
  await td.closed;
  const result = await sipp.done;
  expectSippSuccess(result);
  return result;
}
