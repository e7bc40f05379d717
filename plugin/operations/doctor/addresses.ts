import type { PluginConfig } from '../../../config/schema.js';
import { addressScope } from './address-scope.js';
import { fail, ok, warn, type Check } from './check.js';

/**
 * Whether CCAI can reach the addresses we give it: SIP_ADVERTISED_ADDRESS in Via and Contact (its answers and BYE
 * go there) and RTP_ADVERTISED_ADDRESS in the SDP (its audio goes there). `ccaiAddress` is where CCAI_SIP_HOST
 * resolved; a loopback CCAI is a local test, where any address does.
 */
export function addressChecks(config: PluginConfig, ccaiAddress: string): Check[] {
  const ccai = addressScope(ccaiAddress);
  const check = (setting: 'SIP_ADVERTISED_ADDRESS' | 'RTP_ADVERTISED_ADDRESS', advertised: string, carries: string): Check => {
    const title = `advertised ${setting.slice(0, 3)} address`;
    const own = addressScope(advertised);
    const fix = `set ${setting} to the address CCAI reaches this host at (the public address of its NAT, when there is one)`;
    if (own === 'loopback' && ccai !== 'loopback') {
      return fail(title, `${advertised} is a loopback address, which CCAI (${ccaiAddress}) cannot reach: ${carries} would go nowhere`, fix);
    }
    if (own === 'private' && ccai === 'public') {
      return warn(title, `${advertised} is private while CCAI (${ccaiAddress}) is public: ${carries} arrive only through a NAT that maps it (NAT)`, fix);
    }
    return ok(title, `${advertised} (${own}), CCAI ${ccaiAddress} (${ccai})`);
  };
  return [
    check('SIP_ADVERTISED_ADDRESS', config.sip.advertisedAddress, "CCAI's responses and its BYE"),
    check('RTP_ADVERTISED_ADDRESS', config.rtp.advertisedAddress, "the bot's audio"),
  ];
}
