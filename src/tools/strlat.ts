// strlat: latency histogram of a user-space function through a uprobe and a
// uretprobe (src/bpf/strlat.bpf.c). Default: Ruby's rb_str_new in the
// libruby the target uses; with --func/--lib any function (a funclatency),
// named raw or demangled (Rust, C++).
//
// The BPF side keeps cumulative per-CPU stats and histograms; each report
// is the difference from the previous snapshot, so nothing is lost between
// reading and resetting.
import { Option, type Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { UsageError } from '../core/errors.js';
import { integerParser } from '../core/parsers.js';
import { findLibrary } from '../core/process.js';
import { findRubyBinary, loadUserProbes, probeUserProbes, resolveFunction, type ResolvedFunction } from '../core/uprobes.js';
import { scalarLayout } from '../core/layout.js';
import { formatLog2Hist, log2HistToJson, log2Percentile } from '../core/output/histogram.js';
import { escapeForTerminal, formatDuration, formatCount, term } from '../core/output/format.js';
import type { BpfObject } from '../core/object.js';
import { STRLAT } from './common/figures.js';
import { strlat_stats_layout, strlat_hist_layout, ENUMS, DEFINES, SKELETON, type StrlatStats } from '../generated/strlat.js';

export interface StrlatOptions {
  func?: string;
  lib?: string;
  microseconds?: boolean;
  milliseconds?: boolean;
  size?: boolean;
  arg?: number;
}

const DEFAULT_FUNC = 'rb_str_new';
/** rb_str_new(const char *ptr, long len): the length is the 2nd argument. */
const DEFAULT_SIZE_ARG = 2;

interface Snapshot {
  stats: StrlatStats;
  hists: number[][]; // by ENUMS.STRLAT_HIST_*
}

/** One report (an interval, or the whole run), as --json prints it. */
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
}

function unitOf(opts: StrlatOptions): { name: string; div: number } {
  if (opts.microseconds && opts.milliseconds) throw new UsageError('-u and -m cannot be used together', 'pick one unit');
  if (opts.milliseconds) return { name: 'msecs', div: 1_000_000 };
  if (opts.microseconds) return { name: 'usecs', div: 1000 };
  return { name: 'nsecs', div: 1 };
}

/** --arg: the position of a register argument the BPF side reads (PT_REGS_PARM1..5). */
const parseArgIndex = integerParser('--arg', { min: 1, max: 5, what: 'an argument position', example: '2' });

function readSnapshot(obj: BpfObject<typeof SKELETON>): Snapshot {
  const stats = obj.map('stats').typed(scalarLayout('u32'), strlat_stats_layout).lookup({ value: 0 })!;
  const hmap = obj.map('hists').typed(scalarLayout('u32'), strlat_hist_layout);
  const hists: number[][] = [];
  for (let k = 0; k < ENUMS.STRLAT_HIST_KINDS; k++) hists.push(hmap.lookup({ value: k })?.slots ?? new Array(DEFINES.STRLAT_SLOTS).fill(0));
  return { stats, hists };
}

/** Max since the last call (per CPU, zeroed after reading: a max cannot be diffed). */
function takeMax(obj: BpfObject<typeof SKELETON>): number {
  const m = obj.map('max_ns').typed(scalarLayout('u32'), scalarLayout('u64'));
  const perCpu = m.lookupPerCpu({ value: 0 }) ?? [];
  m.update({ value: 0 }, { value: 0 });
  return perCpu.reduce((a, v) => Math.max(a, v.value), 0);
}

function diff(cur: Snapshot, prev: Snapshot): Snapshot {
  const stats = { ...cur.stats };
  for (const k of Object.keys(stats) as (keyof StrlatStats)[]) stats[k] = cur.stats[k] - prev.stats[k];
  return { stats, hists: cur.hists.map((h, k) => h.map((v, i) => v - prev.hists[k][i])) };
}

export function describeFunctions(query: string, funcs: ResolvedFunction[]): string {
  const f = funcs[0];
  const shown = f.demangled && f.demangled !== query ? `${query} (${f.symbol})` : query;
  return funcs.length > 1 ? `${shown} and ${funcs.length - 1} more of that name` : shown;
}

export default defineTool<StrlatOptions>({
  name: 'strlat',
  summary: 'latency histogram of a user-space function (default: Ruby rb_str_new)',
  textOnly: ['microseconds', 'milliseconds'],
  help: `Examples:
  rbtrace strlat -- ruby app.rb                 rb_str_new latency of one script
  rbtrace strlat -p 1234 -u -i 5                a running ruby, in µs, every 5 s
  rbtrace strlat --size -- ruby app.rb          also the lengths of the new strings
  rbtrace strlat --lib c --func malloc -p 1234  any function: a funclatency
  rbtrace strlat --lib ./target/release/app --func 'app::parse'   demangled Rust/C++ names`,
  options(cmd: Command) {
    cmd
      .option('--func <symbol>', `function to time (raw or demangled name; default ${DEFAULT_FUNC})`)
      .option('--lib <path|name>', 'binary or library holding it: a path, or a name such as c or ruby (default: the target\'s libruby)')
      .option('-u, --microseconds', 'histogram in microseconds')
      .option('-m, --milliseconds', 'histogram in milliseconds')
      .option('--size', `also a histogram of a length argument (--arg; rb_str_new's is the ${DEFAULT_SIZE_ARG}nd)`)
      .addOption(new Option('--arg <n>', 'which argument --size reads (1-5)').argParser(parseArgIndex));
  },
  kernels: { best: '5.10 uprobe' },
  figures: STRLAT,
  probe: () => {
    const binary = findRubyBinary({});
    const funcs = resolveFunction(binary, DEFAULT_FUNC);
    probeUserProbes(SKELETON, ['strlat_entry', 'strlat_return'], (o) => funcs.forEach((f) => {
      o.program('strlat_entry').attachUprobe({ binary, offset: f.offset, pid: process.pid });
      o.program('strlat_return').attachUprobe({ binary, offset: f.offset, pid: process.pid, retprobe: true });
    }));
    return `uprobe (${binary}:${DEFAULT_FUNC})`;
  },
  run(ctx, opts) {
    const unit = unitOf(opts);
    const func = opts.func ?? DEFAULT_FUNC;
    if (opts.arg !== undefined && !opts.size) throw new UsageError('--arg is for --size', 'add --size, or drop --arg');
    const sizeArg = opts.size ? opts.arg ?? (func === DEFAULT_FUNC ? DEFAULT_SIZE_ARG : 1) : 0;
    const target = { pid: ctx.target.pid, command: ctx.target.command };
    const binary = opts.lib !== undefined
      ? findLibrary(opts.lib, ctx.target.pid)
      : findRubyBinary(target);
    const funcs = resolveFunction(binary, func);
    ctx.log.verbose(`${func}: ${funcs.map((f) => `${f.symbol} at file offset 0x${f.offset.toString(16)}`).join(', ')} in ${binary}`);

    const { obj } = loadUserProbes(ctx, {
      skeleton: SKELETON,
      pathName: 'uprobe',
      note: 'uprobe + uretprobe on the function; user-space code has no fentry/kprobe/tracepoint',
      programs: ['strlat_entry', 'strlat_return'],
      rodata: { unit_div: unit.div, size_arg: sizeArg },
      // -p: the kernel filters by pid (other processes never trap). -- CMD
      // and no target: every process mapping the binary; BPF filters.
      attach: (o) => funcs.flatMap((f) => [
        o.program('strlat_entry').attachUprobe({ binary, offset: f.offset, pid: ctx.target.pid }),
        o.program('strlat_return').attachUprobe({ binary, offset: f.offset, pid: ctx.target.pid, retprobe: true }),
      ]),
    });

    const label = describeFunctions(func, funcs);
    if (!ctx.out.json) {
      ctx.out.line(term`Tracing ${label} in ${binary.name}${ctx.target.pid ? ` (pid ${ctx.target.pid})` : ''}... ${ctx.opts.interval ? '' : 'Hit Ctrl-C to end.'}`.trimEnd());
    }

    const zero: Snapshot = { stats: { count: 0, total_ns: 0, dropped: 0, stale: 0, unmatched: 0 },
      hists: Array.from({ length: ENUMS.STRLAT_HIST_KINDS }, () => new Array(DEFINES.STRLAT_SLOTS).fill(0)) };
    let prev = zero;

    const report = (final: boolean) => {
      const cur = readSnapshot(obj);
      const d = diff(cur, prev);
      prev = cur;
      const max = takeMax(obj);
      const s = d.stats;
      const ns = d.hists[ENUMS.STRLAT_HIST_NS];
      const r: StrlatReport = {
        time: new Date().toISOString(),
        function: func,
        binary: String(binary),
        count: s.count,
        total_ns: s.total_ns,
        avg_ns: s.count ? Math.round(s.total_ns / s.count) : 0,
        p50_ns: s.count ? log2Percentile(ns, 50) : 0,
        p90_ns: s.count ? log2Percentile(ns, 90) : 0,
        p99_ns: s.count ? log2Percentile(ns, 99) : 0,
        max_ns: max,
        hist: log2HistToJson(ns),
        ...(sizeArg ? { size_hist: log2HistToJson(d.hists[ENUMS.STRLAT_HIST_SIZE]) } : {}),
        dropped: s.dropped,
        stale: s.stale,
        unmatched: s.unmatched,
      };
      ctx.report(r);
      if (ctx.out.json) {
        ctx.out.record(r);
        return;
      }
      if (final && ctx.opts.interval && r.count === 0 && !s.dropped) return; // nothing since the last interval
      const c = ctx.color;
      if (ctx.opts.interval) ctx.out.line(c.bold(`\n[${new Date().toTimeString().slice(0, 8)}]`));
      else ctx.out.line();
      const text = formatLog2Hist(d.hists[ENUMS.STRLAT_HIST_UNIT], unit.name);
      ctx.out.write(text || term`     (no calls to ${func})\n`);
      if (sizeArg) {
        const st = formatLog2Hist(d.hists[ENUMS.STRLAT_HIST_SIZE], `arg${sizeArg}`);
        if (st) ctx.out.write(`\n${st}`);
      }
      ctx.out.line();
      ctx.out.line(`${c.bold(escapeForTerminal(func))}: count ${formatCount(r.count)}, avg ${formatDuration(r.avg_ns)}, ` +
        `p50 ≤ ${formatDuration(r.p50_ns)}, p90 ≤ ${formatDuration(r.p90_ns)}, p99 ≤ ${formatDuration(r.p99_ns)}, max ${formatDuration(r.max_ns)}`);
      ctx.out.line(c.dim('(percentiles are upper bounds of log2 buckets; count, avg and max are exact)'));
      const notes: string[] = [];
      if (s.dropped) notes.push(`${s.dropped} calls nested deeper than ${DEFINES.STRLAT_MAX_DEPTH} not timed`);
      if (s.stale) notes.push(`${s.stale} calls left by longjmp/exception never returned`);
      if (s.unmatched) notes.push(`${s.unmatched} returns of calls entered before attach`);
      if (notes.length) ctx.out.line(c.dim(notes.join('; ')));
    };

    ctx.session.onInterval(() => report(false));
    ctx.session.onFinish(() => report(true));
  },
});
