// strlat's views: readings (collect.ts) as log2 histograms with a summary
// line per function, the slowest stacks, and with several functions a table.
// No map access here: everything comes in as readings.
import { formatLog2Hist, log2PercentileSlot, type Count } from '../../core/output/histogram.js';
import { escapeForTerminal, formatDuration, formatCount, plural, term } from '../../core/output/format.js';
import { renderTable } from '../../core/output/table.js';
import type { ToolContext } from '../../core/tool.js';
import { DEFINES } from '../../generated/strlat.js';
import type { StrlatReading, StrlatStackRow } from './collect.js';
import type { CopyStats } from './dwarf-collect.js';
import type { UnwindMode } from '../../core/unwind/option.js';
import type { Probed, TracedFunction, Unit } from './probe.js';

/** The line said before tracing starts: what is traced, where (a -p target's pid too). */
export function titleOf(probed: Probed, query: string | undefined, pid: number | undefined): string {
  const at = pid ? ` (pid ${pid})` : '';
  if (!probed.binary) return term`Tracing kernel function ${probed.funcs[0].name} (${probed.path})${at}...`;
  const { funcs } = probed;
  const shown = funcs.length > 1 ? `${funcs.length} functions (${query})` : funcs[0].label;
  return term`Tracing ${shown} in ${probed.binary.name}${at}...`;
}

/** What a cut stack is said to be, by how it was walked. */
const TRUNCATED: Record<UnwindMode, string> = {
  fp: '[truncated: frame pointers missing?]',
  dwarf: '[truncated: the stack copy or a module\'s CFI ended before the outermost frame]',
};

/** Text: a stack, outermost caller first (as a flame graph reads), one frame a line. */
export function formatStack(row: StrlatStackRow, unwind: UnwindMode = 'fp'): string[] {
  const frames = [...row.stack].reverse().map((f) => `      ${escapeForTerminal(f.name)}${f.kernel ? ' [k]' : ''}`);
  return row.truncated ? [`      ${TRUNCATED[unwind]}`, ...frames] : frames;
}

/** -v, at the end of --unwind dwarf: how the walks went and what they cost here. */
export function dwarfNote(s: CopyStats): string {
  const pct = s.calls ? ((100 * s.complete) / s.calls).toFixed(1) : '0';
  const kib = s.calls ? (s.stackBytes / s.calls / 1024).toFixed(1) : '0';
  const us = s.calls ? ((1000 * s.cpuMs) / s.calls).toFixed(0) : '0';
  return `--unwind dwarf: ${plural(s.calls, 'call')} unwound, ${pct} % to the outermost frame, ${kib} KiB of stack copied and ${us} us of unwinding per call`;
}

/**
 * A percentile as the histogram drawn shows it: the bucket holding it, in
 * the histogram's unit ("8 -> 15 usecs"), so the summary and the bars agree.
 */
export function percentileBucket(hist: ArrayLike<Count>, p: number, unit: Unit): string {
  const slot = log2PercentileSlot(hist, p);
  return slot ? `${slot.low} -> ${slot.high} ${unit.name}` : '-';
}

/** What the summary's percentiles are, said under every report. */
export const PERCENTILE_NOTE = '(pN: the histogram bucket holding the call at the Nth percentile, p50 the median call; count, avg and max are exact)';

/** The text view of one reading per function: histograms, summary lines, and with several functions a table. */
export function printReports(ctx: ToolContext, readings: StrlatReading[], funcs: TracedFunction[], unit: Unit, sizeArg: number, unwind: UnwindMode = 'fp'): void {
  const c = ctx.color;
  const several = funcs.length > 1;
  for (const [i, { report: r, unitHist, sizeHist, stackMissed }] of readings.entries()) {
    if (several) ctx.out.line(`${i ? "\n" : ""}${c.bold(escapeForTerminal(funcs[i].label))}`);
    const text = formatLog2Hist(unitHist, unit.name);
    ctx.out.write(text || term`     (no calls to ${r.function})\n`);
    if (sizeArg) {
      const st = formatLog2Hist(sizeHist, `arg${sizeArg}`);
      if (st) ctx.out.write(`\n${st}`);
    }
    ctx.out.line();
    ctx.out.line(`${c.bold(escapeForTerminal(r.function))}: count ${formatCount(r.count)}, avg ${formatDuration(r.avg_ns)}, ` +
      `p50 ${percentileBucket(unitHist, 50, unit)}, p90 ${percentileBucket(unitHist, 90, unit)}, p99 ${percentileBucket(unitHist, 99, unit)}, max ${formatDuration(r.max_ns)}`);
    const notes: string[] = [];
    if (r.dropped) notes.push(`${plural(r.dropped, 'call')} nested deeper than ${DEFINES.STRLAT_MAX_DEPTH} not timed (recursion: each thread keeps the start times of ${DEFINES.STRLAT_MAX_DEPTH} calls in flight, so only the outer ${DEFINES.STRLAT_MAX_DEPTH} levels are timed, their times including the deeper calls; to time every call, trace a function that does not recurse that deep)`);
    if (r.stale) notes.push(`${plural(r.stale, 'call')} left by longjmp/exception never returned`);
    if (r.unmatched) notes.push(`${plural(r.unmatched, 'return')} of calls entered before attach`);
    if (stackMissed) notes.push(`${plural(stackMissed, 'call')} not kept by stack (${unwind === 'dwarf' ? 'the ring buffer of stack copies was full: rbtrace fell behind' : 'the stack table is full'})`);
    if (r.stacks?.length) {
      ctx.out.line(`  slowest callers by total time (${r.stacks.length} of this period's stacks, outermost frame first):`);
      for (const st of r.stacks) {
        ctx.out.line(`    total ${formatDuration(st.total_ns)}, count ${formatCount(st.count)}, avg ${formatDuration(st.avg_ns)}, max ${formatDuration(st.max_ns)}, pid ${st.pid}`);
        for (const l of formatStack(st, unwind)) ctx.out.line(l);
      }
    }
    if (notes.length) ctx.out.line(c.dim(notes.join('; ')));
  }
  if (several) {
    const rows = [...readings].sort((a, b) => b.report.total_ns - a.report.total_ns || b.report.count - a.report.count)
      .map(({ report: r, unitHist }) => [r.function, formatCount(r.count), formatDuration(r.total_ns), formatDuration(r.avg_ns),
        percentileBucket(unitHist, 50, unit), percentileBucket(unitHist, 99, unit), formatDuration(r.max_ns)]);
    ctx.out.line();
    ctx.out.write(renderTable(['FUNCTION', 'COUNT', 'TOTAL', 'AVG', 'P50', 'P99', 'MAX'], rows,
      { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'] }));
  }
  ctx.out.line(c.dim(PERCENTILE_NOTE));
}
