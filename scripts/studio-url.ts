/**
 * `npm run studio-url -- --bot st-… --sipuri +1… [--account-id …] [--agent-assist]`: prints the Voice Stream URL
 * for Talkdesk Studio, from the configuration `npm start` reads (APP_CONFIG or jambonz-app.json, the environment),
 * its token signed with the bot's current secret. The URL alone goes to stdout, so a script can take it; what the
 * operator should know besides goes to stderr. Exit 1 with the reason when no URL can be made.
 */
import { parseArgs } from 'node:util';
import { appConfigFile, loadConfig } from '../config/load.js';
import { studioUrl } from '../plugin/talkdesk/studio-url.js';

const USAGE = 'usage: npm run studio-url -- --bot st-… --sipuri +17345551234 [--account-id <Kore account id>] [--agent-assist]';

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        bot: { type: 'string' },
        sipuri: { type: 'string' },
        'account-id': { type: 'string' },
        'agent-assist': { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 1;
  }
  if (values.bot === undefined || values.sipuri === undefined) {
    process.stderr.write(`--bot and --sipuri are required\n${USAGE}\n`);
    return 1;
  }
  const file = appConfigFile(process.env);
  const loaded = loadConfig({ file, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(`${file}: the configuration is not valid:\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    return 1;
  }
  const result = studioUrl(loaded.config, {
    botId: values.bot,
    sipuri: values.sipuri,
    agentassist: values['agent-assist'],
    ...(values['account-id'] === undefined ? {} : { accountId: values['account-id'] }),
  });
  if (!result.ok) {
    process.stderr.write(`studio-url: ${result.error}\n`);
    return 1;
  }
  for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
  process.stdout.write(`${result.url}\n`);
  return 0;
}

process.exitCode = main();
