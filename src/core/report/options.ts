// --save, --assert, --baseline, --max-regression: the options of every tracing
// tool that act on the run's final figures (src/core/report). Parsed here, in
// one block, so that src/core/options.ts only adds them.
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { collectAssertion, type Assertion } from './assert.js';
import { SAVED_RUN } from './document.js';
import { checkOutputPath } from '../output/file.js';

export interface ReportOptions {
  save?: string;
  assert?: Assertion[];
  baseline?: string;
  maxRegression?: number;
}

function parsePercent(text: string): number {
  const v = Number(text.trim().replace(/%$/, ''));
  if (text.trim() === '' || !Number.isFinite(v) || v < 0) {
    throw new UsageError(`--max-regression wants a percentage (0 or more), got '${text}'`, 'e.g. --max-regression 10');
  }
  return v;
}

/** Refuse an unwritable --save, or one naming a file that is not a saved run, at once, not after a long run. */
function parseSavePath(text: string): string {
  return checkOutputPath(text, SAVED_RUN);
}

export function addReportOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--save <file>', 'write the run\'s final figures to FILE (JSON; see rbtrace diff)').argParser(parseSavePath))
    .addOption(new Option('--assert <expr>', "fail (exit 3) unless EXPR holds at the end, e.g. 'realloc.count <= 40k' (repeatable)").argParser(collectAssertion))
    .option('--baseline <file>', 'fail (exit 3) when a count or latency percentile is worse than in this saved run')
    .addOption(new Option('--max-regression <pct>', 'with --baseline: how much worse is allowed, in per cent (default 0)').argParser(parsePercent));
}
