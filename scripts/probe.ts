/**
 * `npm run probe -- …`: one real call to your bot through the gateway's own pipeline, from the command line
 * (plugin/operations/probe/). Exit 0 when it ended as `--expect` says (or, without, when the bot answered), 1
 * otherwise, so a conformance run can be scripted after every change of bot or rules.
 */
import { writeFile } from 'node:fs/promises';
import { appConfigFile, loadConfig } from '../config/load.js';
import { PROBE_USAGE, parseProbeArgs } from '../plugin/operations/probe/options.js';
import { runProbe } from '../plugin/operations/probe/probe.js';
import { spokenPrompt, wavPrompt } from '../plugin/operations/probe/prompt.js';
import { renderReport } from '../plugin/operations/probe/report.js';
import { ulawWav } from '../plugin/operations/probe/wav.js';

async function main(): Promise<number> {
  const parsed = parseProbeArgs(process.argv.slice(2));
  if (!parsed.ok) {
    process.stderr.write(`probe: ${parsed.error}\n${PROBE_USAGE}\n`);
    return 1;
  }
  const opts = parsed.value;
  const file = appConfigFile(process.env);
  const loaded = loadConfig({ file, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(`${file}: the configuration is not valid:\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    return 1;
  }
  let prompt: Buffer = Buffer.alloc(0);
  if (opts.say !== undefined || opts.wav !== undefined) {
    const made = opts.say !== undefined ? await spokenPrompt(opts.say) : await wavPrompt(opts.wav!);
    if (!made.ok) {
      process.stderr.write(`probe: ${made.error}\n`);
      return 1;
    }
    prompt = made.ulaw;
  }
  const { report, botAudio } = await runProbe(loaded.config, loaded.appJson, opts, prompt);
  if (opts.record !== undefined) {
    await writeFile(opts.record, ulawWav(botAudio));
    report.recording = { path: opts.record, bytes: botAudio.length };
  }
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
  return report.verdict.pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`probe failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
