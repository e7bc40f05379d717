import { randomBytes } from 'node:crypto';

/** RFC 3261 §8.1.1.7: the magic cookie tells peers the branch is unique across space and time. */
export const BRANCH_COOKIE = 'z9hG4bK';

export function newBranch(): string {
  return BRANCH_COOKIE + randomBytes(10).toString('hex');
}

/** RFC 3261 §19.3: at least 32 bits of randomness */
export function newTag(): string {
  return randomBytes(8).toString('hex');
}

export function newCallId(): string {
  return randomBytes(16).toString('hex');
}
