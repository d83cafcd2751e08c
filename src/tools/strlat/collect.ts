// strlat's model: per-function cumulative figures read from the BPF maps
// (src/bpf/strlat.bpf.c), turned into one report per function for each
// interval (the difference from the previous snapshot, so nothing is lost
// between reading and resetting), and the text view of those reports.
import type { BpfObject } from '../../core/object.js';
import { scalarLayout } from '../../core/layout.js';
import { formatLog2Hist, log2HistToJson, log2Percentile } from '../../core/output/histogram.js';
import { escapeForTerminal, formatDuration, formatCount, term } from '../../core/output/format.js';
import { renderTable } from '../../core/output/table.js';
import type { ToolContext } from '../../core/tool.js';
import { formatStack, type StackCollector, type StrlatStackRow } from './stacks.js';
import { strlat_stats_layout, strlat_hist_layout, ENUMS, DEFINES, type StrlatStats, type SKELETON } from '../../generated/strlat.js';

/** One report of one function (an interval, or the whole run), as --json prints it. */
export interface StrlatReport {
  time: string;
  function: string;
  binary: string;
  count: number;
  total_ns: number;
  avg_ns: number;
  /** Upper bounds of the log2 bucket where the percentile falls (estimates). */
  p50_ns: number;
  p90_ns: number;
  p99_ns: number;
  max_ns: number;
  hist: { low: number; high: number; count: number }[];
  size_hist?: { low: number; high: number; count: number }[];
  dropped: number;
  stale: number;
  unmatched: number;
  /** --stack: the slowest calling stacks (by total time) of the period. */
  stacks?: StrlatStackRow[];
}

interface Snapshot {
  stats: StrlatStats;
  hists: number[][]; // by ENUMS.STRLAT_HIST_*
}

const u32 = scalarLayout('u32');
const zeroHist = () => new Array<number>(DEFINES.STRLAT_SLOTS).fill(0);
const ZERO: Snapshot = {
  stats: { count: 0, total_ns: 0, dropped: 0, stale: 0, unmatched: 0, stack_missed: 0 },
  hists: Array.from({ length: ENUMS.STRLAT_HIST_KINDS }, zeroHist),
};

/** The maps sized to `n` functions (before load): per-CPU arrays cost ncpu x entries. */
export function sizeMaps(obj: BpfObject<typeof SKELETON>, n: number): void {
  obj.map('stats').maxEntries = n;
  obj.map('max_ns').maxEntries = n;
  obj.map('hists').maxEntries = n * ENUMS.STRLAT_HIST_KINDS;
}

export interface Unit {
  name: string;
  div: number;
}

export interface TracedFunction {
  /** As the user named it (or as a pattern matched it). */
  name: string;
  /** What the table's title says of it (the raw symbol when demangled, aliases). */
  label: string;
}

export class StrlatCollector {
  private prev: Snapshot[];

  constructor(private readonly obj: BpfObject<typeof SKELETON>, private readonly funcs: TracedFunction[],
    private readonly binary: string, private readonly sizeArg: number) {
    this.prev = funcs.map(() => ZERO);
  }

  /** One report per function since the last call (with --stack, its slowest stacks). */
  take(stackCollector?: StackCollector): StrlatReport[] {
    const stacks = stackCollector?.take(this.funcs.length);
    const smap = this.obj.map('stats').typed(u32, strlat_stats_layout);
    const hmap = this.obj.map('hists').typed(u32, strlat_hist_layout);
    const mmap = this.obj.map('max_ns').typed(u32, scalarLayout('u64'));
    const time = new Date().toISOString();
    return this.funcs.map((f, i) => {
      const cur: Snapshot = {
        stats: smap.lookup({ value: i }) ?? ZERO.stats,
        hists: Array.from({ length: ENUMS.STRLAT_HIST_KINDS }, (_, k) => hmap.lookup({ value: i * ENUMS.STRLAT_HIST_KINDS + k })?.slots ?? zeroHist()),
      };
      const prev = this.prev[i];
      this.prev[i] = cur;
      const s = { ...cur.stats };
      for (const k of Object.keys(s) as (keyof StrlatStats)[]) s[k] = cur.stats[k] - prev.stats[k];
      const hists = cur.hists.map((h, k) => h.map((v, j) => v - prev.hists[k][j]));
      // Max since the last call (per CPU, zeroed after reading: a max cannot be diffed).
      const max = (mmap.lookupPerCpu({ value: i }) ?? []).reduce((a, v) => Math.max(a, v.value), 0);
      mmap.update({ value: i }, { value: 0 });
      const ns = hists[ENUMS.STRLAT_HIST_NS];
      return {
        time,
        function: f.name,
        binary: this.binary,
        count: s.count,
        total_ns: s.total_ns,
        avg_ns: s.count ? Math.round(s.total_ns / s.count) : 0,
        p50_ns: s.count ? log2Percentile(ns, 50) : 0,
        p90_ns: s.count ? log2Percentile(ns, 90) : 0,
        p99_ns: s.count ? log2Percentile(ns, 99) : 0,
        max_ns: max,
        hist: log2HistToJson(ns),
        ...(this.sizeArg ? { size_hist: log2HistToJson(hists[ENUMS.STRLAT_HIST_SIZE]) } : {}),
        dropped: s.dropped,
        stale: s.stale,
        unmatched: s.unmatched,
        // kept for the text view (not in JSON)
        ...{ [UNIT_HIST]: hists[ENUMS.STRLAT_HIST_UNIT], [SIZE_HIST]: hists[ENUMS.STRLAT_HIST_SIZE], [MISSED]: s.stack_missed },
        ...(stacks ? { stacks: stacks[i] } : {}),
      };
    });
  }
}

// Symbols: invisible to JSON.stringify, so --json prints only the fields above.
const UNIT_HIST = Symbol('unitHist');
const SIZE_HIST = Symbol('sizeHist');
const MISSED = Symbol('stackMissed');
type WithHists = StrlatReport & { [UNIT_HIST]?: number[]; [SIZE_HIST]?: number[]; [MISSED]?: number };

/** The text view of one report: histograms, summary lines, and with several functions a table. */
export function printReports(ctx: ToolContext, reps: StrlatReport[], funcs: TracedFunction[], unit: Unit, sizeArg: number): void {
  const c = ctx.color;
  const several = funcs.length > 1;
  for (const [i, r] of (reps as WithHists[]).entries()) {
    if (several) ctx.out.line(`${i ? "\n" : ""}${c.bold(escapeForTerminal(funcs[i].label))}`);
    const text = formatLog2Hist(r[UNIT_HIST] ?? [], unit.name);
    ctx.out.write(text || term`     (no calls to ${r.function})\n`);
    if (sizeArg) {
      const st = formatLog2Hist(r[SIZE_HIST] ?? [], `arg${sizeArg}`);
      if (st) ctx.out.write(`\n${st}`);
    }
    ctx.out.line();
    ctx.out.line(`${c.bold(escapeForTerminal(r.function))}: count ${formatCount(r.count)}, avg ${formatDuration(r.avg_ns)}, ` +
      `p50 ≤ ${formatDuration(r.p50_ns)}, p90 ≤ ${formatDuration(r.p90_ns)}, p99 ≤ ${formatDuration(r.p99_ns)}, max ${formatDuration(r.max_ns)}`);
    const notes: string[] = [];
    if (r.dropped) notes.push(`${r.dropped} calls nested deeper than ${DEFINES.STRLAT_MAX_DEPTH} not timed`);
    if (r.stale) notes.push(`${r.stale} calls left by longjmp/exception never returned`);
    if (r.unmatched) notes.push(`${r.unmatched} returns of calls entered before attach`);
    if (r[MISSED]) notes.push(`${r[MISSED]} calls not kept by stack (the stack table is full)`);
    if (r.stacks?.length) {
      ctx.out.line(`  slowest callers by total time (${r.stacks.length} of this period's stacks, outermost frame first):`);
      for (const st of r.stacks) {
        ctx.out.line(`    total ${formatDuration(st.total_ns)}, count ${formatCount(st.count)}, avg ${formatDuration(st.avg_ns)}, max ${formatDuration(st.max_ns)}, pid ${st.pid}`);
        for (const l of formatStack(st)) ctx.out.line(l);
      }
    }
    if (notes.length) ctx.out.line(c.dim(notes.join('; ')));
  }
  if (several) {
    const rows = [...reps].sort((a, b) => b.total_ns - a.total_ns || b.count - a.count)
      .map((r) => [r.function, formatCount(r.count), formatDuration(r.total_ns), formatDuration(r.avg_ns),
        formatDuration(r.p50_ns), formatDuration(r.p99_ns), formatDuration(r.max_ns)]);
    ctx.out.line();
    ctx.out.write(renderTable(['FUNCTION', 'COUNT', 'TOTAL', 'AVG', 'P50 ≤', 'P99 ≤', 'MAX'], rows,
      { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'] }));
  }
  ctx.out.line(c.dim('(percentiles are upper bounds of log2 buckets; count, avg and max are exact)'));
}
