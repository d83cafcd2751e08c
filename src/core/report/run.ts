// What happens to a run's figures around a tracing tool: checks before
// anything is loaded (assertion names, the baseline file), the collector the
// tool's ctx.report() feeds, and at the end --save, --assert and --baseline,
// which decide the exit status:
//   rbtrace's own errors (1, 2) > CMD's failure (its status) > a failed
//   assertion or regression (EXIT_ASSERT = 3) > 0.
// A CMD that itself exits 3 is reported as 1 when assertions are on, so that
// 3 always means "the figures are wrong", never "the command broke".
import { EXIT_OK, EXIT_RUNTIME, UsageError, errorLine } from '../errors.js';
import { checkAssertions, describeOutcome, evaluate } from './assert.js';
import { compareFigures, histogramOf, type FieldChange, type RowChange } from './compare.js';
import { makeDocument, readDocument, recordedOptions, writeDocument, type SavedRun } from './document.js';
import { FigureCollector, type FigureSchema, type Figures } from './figures.js';
import type { ReportOptions } from './options.js';
import { formatCount, formatDuration, escapeArg } from '../output/format.js';

/** A failed --assert, or a regression over --baseline. */
export const EXIT_ASSERT = 3;

export interface RunInfo {
  tool: string;
  opts: ReportOptions & Record<string, unknown>;
  command: string[];
  pid?: number;
}

export class RunReport {
  readonly collector: FigureCollector;
  private readonly started = new Date();
  private readonly baseline?: SavedRun;

  private constructor(private readonly info: RunInfo, readonly schema: FigureSchema) {
    this.collector = new FigureCollector(schema);
    const { opts, tool } = info;
    checkAssertions(opts.assert ?? [], schema, tool);
    if (opts.baseline !== undefined) {
      const base = readDocument(opts.baseline, '--baseline');
      if (base.tool !== tool) throw new UsageError(`--baseline: ${opts.baseline} is a saved ${base.tool} run, not ${tool}`, `compare with a saved ${tool} run`);
      if (base.schema.rows?.array !== schema.rows?.array) {
        throw new UsageError(`--baseline: ${opts.baseline} has ${base.schema.rows?.array ?? 'no rows'}, this run ${schema.rows?.array ?? 'none'}`, 'use the options the baseline was saved with');
      }
      this.baseline = base;
    }
  }

  /** undefined when no option asks for the figures (nothing is collected then). */
  static prepare(info: RunInfo, figures: ((opts: Record<string, unknown>) => FigureSchema) | undefined): RunReport | undefined {
    const { opts } = info;
    if (opts.maxRegression !== undefined && opts.baseline === undefined) throw new UsageError('--max-regression is for --baseline', 'add --baseline FILE');
    if (opts.save === undefined && !opts.assert?.length && opts.baseline === undefined) return undefined;
    if (!figures) throw new UsageError(`${info.tool} has no figures to save or assert on`);
    return new RunReport(info, figures(opts));
  }

  /** After the session: save, judge, and the exit status. */
  finish(status: number, prefix: string, verbose: boolean): number {
    const say = (line: string) => process.stderr.write(`${prefix}: ${line}\n`);
    const figures = this.collector.result();
    const { opts, tool, command, pid } = this.info;
    if (opts.save !== undefined) {
      try {
        writeDocument(opts.save, makeDocument({
          tool, options: recordedOptions(opts), command: command.length ? command : null, pid: pid ?? null,
          started: this.started.toISOString(), duration_s: (Date.now() - this.started.getTime()) / 1000,
          exit_status: status, schema: this.schema, figures,
        }));
        if (verbose) say(escapeArg(`saved the run's figures in ${opts.save}`)); // a path the user typed: may hold escapes
      } catch (err) {
        say(errorLine(prefix, err).slice(prefix.length + 2));
        if (status === EXIT_OK) status = EXIT_RUNTIME;
      }
    }
    if (!this.collector.hasFigures && (opts.assert?.length || this.baseline)) say('the run ended before any figures were reported: assertions see zeros');
    let failed = false;
    for (const a of opts.assert ?? []) {
      const o = evaluate(a, figures, this.schema, tool);
      if (!o.ok || verbose) say(escapeArg(describeOutcome(o)));
      failed ||= !o.ok;
    }
    if (this.baseline) {
      const regressions = findRegressions(this.schema, this.baseline.figures, figures, opts.maxRegression ?? 0);
      for (const r of regressions) say(escapeArg(r));
      if (verbose && regressions.length === 0) say(`no regression over ${opts.baseline} (more than ${opts.maxRegression ?? 0}% allowed)`);
      failed ||= regressions.length > 0;
    }
    if (status !== EXIT_OK) {
      if (status === EXIT_ASSERT && (opts.assert?.length || this.baseline)) {
        say(`the command exited with status ${EXIT_ASSERT}, the status of failed assertions: exiting with ${EXIT_RUNTIME} instead`);
        return EXIT_RUNTIME;
      }
      return status;
    }
    return failed ? EXIT_ASSERT : EXIT_OK;
  }
}

function show(f: FieldChange, v: number): string {
  return f.kind === 'duration' || f.kind === 'percentile' ? formatDuration(v) : formatCount(v);
}

/**
 * Regressions of `now` over `base`: a count, or a latency percentile whose
 * histogram is judged shifted up (stats.ts), more than `pct` per cent higher.
 * A row absent from the baseline counts from 0: any call of it is a regression.
 */
export function findRegressions(schema: FigureSchema, base: Figures, now: Figures, pct: number): string[] {
  const out: string[] = [];
  const rows: RowChange[] = compareFigures(schema, base, now);
  for (const r of rows) {
    for (const f of r.fields) {
      if (f.kind !== 'count' && f.kind !== 'percentile') continue;
      if (f.after <= f.before * (1 + pct / 100)) continue;
      if (f.kind === 'percentile') {
        const h = histogramOf(r, f.field);
        if (!h || h.verdict !== 'higher') continue; // within noise, or too few samples to tell
      }
      const name = `${r.label ? `${r.label}.` : ''}${f.field.replace(/_ns$/, '')}`;
      const rel = f.change_pct === null ? 'from 0' : `+${f.change_pct.toFixed(1)}%`;
      out.push(`regression: ${name} ${show(f, f.before)} -> ${show(f, f.after)} (${rel}; at most +${pct}% allowed)`);
    }
  }
  return out;
}
