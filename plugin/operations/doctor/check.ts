/**
 * One line of `npm run doctor`: what was checked, how it went, and for a warning or failure what to change, in
 * operator words naming the setting.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  status: CheckStatus;
  title: string;
  detail?: string;
  fix?: string;
}

export function ok(title: string, detail?: string): Check {
  return detail === undefined ? { status: 'ok', title } : { status: 'ok', title, detail };
}

export function warn(title: string, detail: string, fix?: string): Check {
  return fix === undefined ? { status: 'warn', title, detail } : { status: 'warn', title, detail, fix };
}

export function fail(title: string, detail: string, fix?: string): Check {
  return fix === undefined ? { status: 'fail', title, detail } : { status: 'fail', title, detail, fix };
}

/** 0 when nothing failed: warnings are for the operator to read, not for a deploy script to stop on */
export function exitCode(checks: readonly Check[]): number {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

/** how many days from `now` until `date`, rounded down (negative once it has passed) */
export function daysUntil(date: Date, now = Date.now()): number {
  return Math.floor((date.getTime() - now) / 86_400_000);
}

/** a certificate with fewer days left than this is a warning: renewals that failed leave about two weeks' notice */
export const EXPIRY_WARNING_DAYS = 14;
