// strlat's readings: the only code that reads its maps. The BPF side
// (src/bpf/strlat.bpf.c) keeps cumulative per-CPU figures and histograms per
// function; each reading is the difference from the previous snapshot, so
// nothing is lost between reading and resetting. The max is kept per
// interval instead (a max cannot be diffed): read, then zeroed. With
// --stack, stack_lat's (function, process, stacks) entries are drained and
// symbolized through src/core/stacks.
import type { BpfObject } from '../../core/bpf/object.js';
import type { ToolContext } from '../../core/tool.js';
import { log2HistToJson, log2Percentile } from '../../core/output/histogram.js';
import { StackMap, Symbolizer, type Stack } from '../../core/stacks/index.js';
import { ENUMS, DEFINES, type StrlatStats, type SKELETON } from '../../generated/strlat.js';
import type { TracedFunction } from './probe.js';

/** One stack of one function in a report, as --json prints it. */
export interface StrlatStackRow {
  count: number;
  total_ns: number;
  avg_ns: number;
  max_ns: number;
  pid: number;
  /** Innermost first: the function's caller first (kernel frames first for --kfunc). */
  stack: { name: string; module?: string; kernel?: boolean }[];
  /** The user stack was probably cut short (frame pointers missing). */
  truncated: boolean;
}

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

/** One function's reading: its report, and what only the text view shows. */
export interface StrlatReading {
  report: StrlatReport;
  /** The histogram in the unit of -u/-m (the BPF side divides). */
  unitHist: number[];
  /** --size: the histogram of the argument. */
  sizeHist: number[];
  /** --stack: calls not kept by stack (the stack table full). */
  stackMissed: number;
}

interface Snapshot {
  stats: StrlatStats;
  hists: number[][]; // by ENUMS.STRLAT_HIST_*
}

const zeroHist = () => new Array<number>(DEFINES.STRLAT_SLOTS).fill(0);
const ZERO: Snapshot = {
  stats: { count: 0, total_ns: 0, dropped: 0, stale: 0, unmatched: 0, stack_missed: 0 },
  hists: Array.from({ length: ENUMS.STRLAT_HIST_KINDS }, zeroHist),
};

/** The maps strlat reads, typed from the skeleton. */
function strlatMaps(obj: BpfObject<typeof SKELETON>) {
  return {
    stats: obj.typedMap('stats'),
    hists: obj.typedMap('hists'),
    maxNs: obj.typedMap('max_ns'),
    stackLat: obj.typedMap('stack_lat'),
  };
}

export class StrlatCollector {
  private prev: Snapshot[];
  private readonly maps: ReturnType<typeof strlatMaps>;

  constructor(obj: BpfObject<typeof SKELETON>, private readonly funcs: TracedFunction[],
    private readonly binary: string, private readonly sizeArg: number) {
    this.prev = funcs.map(() => ZERO);
    this.maps = strlatMaps(obj);
  }

  /** One reading per function since the last call (with --stack, its slowest stacks). */
  take(stackCollector?: StackSource): StrlatReading[] {
    const stacks = stackCollector?.take(this.funcs.length);
    const time = new Date().toISOString();
    return this.funcs.map((f, i) => {
      const cur: Snapshot = {
        stats: this.maps.stats.lookup({ value: i }) ?? ZERO.stats,
        hists: Array.from({ length: ENUMS.STRLAT_HIST_KINDS }, (_, k) => this.maps.hists.lookup({ value: i * ENUMS.STRLAT_HIST_KINDS + k })?.slots ?? zeroHist()),
      };
      const prev = this.prev[i];
      this.prev[i] = cur;
      const s = { ...cur.stats };
      for (const k of Object.keys(s) as (keyof StrlatStats)[]) s[k] = cur.stats[k] - prev.stats[k];
      const hists = cur.hists.map((h, k) => h.map((v, j) => v - prev.hists[k][j]));
      // Max since the last call (the CPUs' max, src/core/bpf/maps.ts; zeroed after reading).
      const max = this.maps.maxNs.lookup({ value: i })?.max_ns ?? 0;
      this.maps.maxNs.update({ value: i }, { max_ns: 0 });
      const ns = hists[ENUMS.STRLAT_HIST_NS];
      return {
        report: {
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
          ...(stacks ? { stacks: stacks[i] } : {}),
        },
        unitHist: hists[ENUMS.STRLAT_HIST_UNIT],
        sizeHist: hists[ENUMS.STRLAT_HIST_SIZE],
        stackMissed: s.stack_missed,
      };
    });
  }
}

/** Where --stack's rows come from: stack ids (StackCollector) or stack copies (CopyStackCollector, --unwind dwarf). */
export interface StackSource {
  /** Per function (by index): its slowest stacks since the last call. */
  take(nfuncs: number): StrlatStackRow[][];
  /** Stacks that could not be kept (the stack map full); 0 where there is none. */
  errors(): number;
}

/** One (function, process, stack) row's totals, before its stack is named. */
export interface StackTotals {
  func: number;
  pid: number;
  count: number;
  total_ns: number;
  max_ns: number;
}

/** Per function, its `top` rows by total time; only the rows kept are symbolized (`stackOf`). */
export function topStackRows<E extends StackTotals>(entries: E[], nfuncs: number, top: number, stackOf: (e: E) => Stack): StrlatStackRow[][] {
  const rows: StrlatStackRow[][] = Array.from({ length: nfuncs }, () => []);
  for (const e of [...entries].sort((a, b) => b.total_ns - a.total_ns)) {
    const list = rows[e.func];
    if (!list || list.length >= top) continue;
    const st = stackOf(e);
    list.push({
      count: e.count, total_ns: e.total_ns, avg_ns: e.count ? Math.round(e.total_ns / e.count) : 0, max_ns: e.max_ns, pid: e.pid,
      stack: st.frames.map((f) => ({ name: f.name, ...(f.module ? { module: f.module } : {}), ...(f.kernel ? { kernel: true } : {}) })),
      truncated: st.truncated,
    });
  }
  return rows;
}

/**
 * --stack: each function's latency by the stack that called it. Processes
 * are noted while they run (their mappings), so a command that has exited by
 * the final report still gets names.
 */
export class StackCollector implements StackSource {
  private readonly symbolizer = new Symbolizer();
  private readonly stacks: StackMap;
  private readonly stackLat: ReturnType<typeof strlatMaps>['stackLat'];
  private readonly timer: NodeJS.Timeout;

  constructor(obj: BpfObject<typeof SKELETON>, ctx: ToolContext, private readonly top: number) {
    this.stacks = StackMap.of(obj);
    this.stackLat = strlatMaps(obj).stackLat;
    this.timer = setInterval(() => this.notePids(), 100);
    this.timer.unref();
    ctx.session.own({ close: () => clearInterval(this.timer) });
  }

  private notePids(): void {
    for (const k of this.stackLat.keys()) this.symbolizer.notePid(k.tgid);
  }

  /** Per function (by index): its `top` stacks by total time since the last call. */
  take(nfuncs: number): StrlatStackRow[][] {
    this.notePids();
    const entries = this.stackLat.drain().map(([k, v]) => ({ ...v, func: k.func, pid: k.tgid, ustack: k.ustack, kstack: k.kstack }));
    return topStackRows(entries, nfuncs, this.top,
      (e) => this.symbolizer.symbolize(e.pid, this.stacks.addresses(e.ustack), this.stacks.addresses(e.kstack)));
  }

  /** Captures the stack map could not keep (full, collisions). */
  errors(): number {
    return this.stacks.errors();
  }
}
