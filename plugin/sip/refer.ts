import { splitHeaderList } from './header-list.js';
/**
 * What both adapters answer to a REFER (RFC 3515) from the bot. The transfer is carried out on Talkdesk's side (an
 * escalation), so the REFER is accepted (202) and its implicit subscription ended at once by one NOTIFY that is both
 * the immediate one §2.4.4 requires and the final one: sipfrag `SIP/2.0 200 OK`, `Subscription-State: terminated`.
 */

export const REFER_ACCEPTED = { status: 202, reason: 'Accepted' } as const;
export const REFER_WITHOUT_ONE_TARGET = { status: 400, reason: 'Bad Request (exactly one Refer-To)' } as const;
/** a REFER that arrives after our BYE went out: there is no call left to transfer */
export const REFER_WHILE_ENDING = { status: 603, reason: 'Decline' } as const;

/** The final NOTIFY's headers (Contact, required by RFC 6665 §4.2.2, is the adapter's) and body. */
export function referNotify(referCount: number, referSeq: number): { headers: Record<string, string>; body: string } {
  return {
    headers: {
      // §2.4.6: a NOTIFY names its REFER by `id` once there is more than one REFER in the dialog
      Event: referCount <= 1 ? 'refer' : `refer;id=${referSeq}`,
      'Subscription-State': 'terminated;reason=noresource',
      'Content-Type': 'message/sipfrag;version=2.0',
    },
    body: 'SIP/2.0 200 OK\r\n',
  };
}

/** §2.4.1: a REFER carries exactly one Refer-To (`r` is its compact form); its value, or undefined. */
export function singleReferTo(get: (name: string) => string | undefined): string | undefined {
  const value = get('refer-to') ?? get('r');
  if (value === undefined || value.trim() === '') return undefined;
  // two values (or two headers, which the parser joins with a comma) are not one target
  const targets = splitHeaderList(value);
  return targets.length === 1 ? value : undefined;
}
