// mallocstat: calls, requested bytes (log2 histogram) and latency of the
// allocator functions of any process, from uprobes on its libc (or on
// another allocator: --lib libjemalloc.so.2 --prefix je_). The counting is
// done in BPF (src/bpf/mallocstat.bpf.c); this file finds the allocator,
// checks its symbols, attaches, and reports per interval and at the end.
// --leaks: blocks not freed, by allocating stack (mallocstat/leaks.ts).
import { Option, type Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { loadUserProbes, probeUserProbes } from '../core/uprobes.js';
import { ElfFile, stripVersion } from '../core/elf.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import { integerParser, secondsParser } from '../core/parsers.js';
import { configureLeaks, DEFAULT_MAX_ALLOCS, LeakTracker, leaksJson, leakWarnings, renderLeaks } from './mallocstat/leaks.js';
import { executableOf, givenFile, libraryMatches, libraryOfPid, pidExists, readComm, resolveCommand, systemLibrary } from '../core/process.js';
import { openFile, type BinaryFile } from '../core/procfiles.js';
import { formatLog2Hist, log2HistToJson } from '../core/output/histogram.js';
import { formatBytes, formatCount, formatDuration, term } from '../core/output/format.js';
import { cgroupFieldsOfPid, cgroupSuffix, type CgroupFields } from '../core/cgroup.js';
import { renderTable } from '../core/output/table.js';
import type { BpfObject, BpfLink } from '../core/object.js';
import type { ToolContext } from '../core/tool.js';
import { MALLOCSTAT, mallocstatDelta } from './common/figures.js';
import { scalarLayout } from '../core/layout.js';
import {
  ms_key_layout, ms_stats_layout, ms_hist_key_layout, ms_comm_layout,
  type MsStats, type ProgramName, ENUMS, DEFINES, SKELETON,
} from '../generated/mallocstat.js';

export interface MallocstatOptions {
  latency?: boolean;     // -L
  perProcess?: boolean;  // -P
  lib?: string;
  prefix: string;
  leaks?: boolean;
  older?: number;
  maxAllocs?: number;
}

/** The functions, in the order of enum ms_func, with the program that probes each. */
export const FUNCTIONS = [
  { name: 'malloc', id: ENUMS.MS_MALLOC, program: 'ms_malloc', required: true },
  { name: 'calloc', id: ENUMS.MS_CALLOC, program: 'ms_calloc' },
  { name: 'realloc', id: ENUMS.MS_REALLOC, program: 'ms_realloc' },
  { name: 'reallocarray', id: ENUMS.MS_REALLOCARRAY, program: 'ms_reallocarray' },
  { name: 'free', id: ENUMS.MS_FREE, program: 'ms_free', required: true },
  { name: 'posix_memalign', id: ENUMS.MS_POSIX_MEMALIGN, program: 'ms_posix_memalign' },
  { name: 'aligned_alloc', id: ENUMS.MS_ALIGNED_ALLOC, program: 'ms_aligned_alloc' },
  { name: 'memalign', id: ENUMS.MS_MEMALIGN, program: 'ms_memalign' },
] as const;

/** Always timed: their returns end the nesting (see mallocstat.bpf.c), and realloc is where copies hide. */
const ALWAYS_TIMED = new Set<string>(['realloc', 'reallocarray']);

/** A probed function: where it is, and the other names that are the same code. */
export interface ProbedFunction {
  name: string;
  id: number;
  program: ProgramName;
  symbol: string;
  offset: number;
  /** e.g. memalign, when aligned_alloc is an alias of it (glibc): counted as one. */
  aliases: string[];
  timed: boolean;
}

/** The file holding the allocator a target uses; throws a one-line error when there is none. */
export function findAllocator(target: { pid?: number; command?: { argv: string[] } }, lib: string | undefined): BinaryFile {
  const name = lib ?? 'c';
  if (name.includes('/')) return givenFile(name, target.pid);
  if (target.pid) {
    const mapped = libraryOfPid(target.pid, name);
    if (mapped) return mapped;
    const exe = executableOf(target.pid);
    const what = lib ? name : 'libc';
    const hint = exe && definesMalloc(exe)
      ? `its allocator is statically linked into ${exe}: trace it with --lib ${exe}`
      : lib ? 'is it loaded (LD_PRELOAD, dlopen)? give the library the process maps' : 'a statically linked program without symbols cannot be traced';
    throw new RbtraceError(`process ${target.pid} (${readComm(target.pid)}) does not map ${what}`, { hint });
  }
  if (target.command && !lib) {
    // The command is held before exec: look at the file it will run.
    const cmd = resolveCommand(target.command.argv[0]);
    let elf: ElfFile | undefined;
    try {
      elf = cmd ? ElfFile.open(cmd) : undefined;
    } catch {
      elf = undefined; // a script (#!): its interpreter uses the system's libc
    }
    if (elf) {
      const needed = elf.needed();
      const libc = needed.find((n) => libraryMatches(n, 'c'));
      if (libc) return openFile(systemLibrary(libc) ?? systemOrFail('c'));
      if (needed.length === 0) {
        const hint = definesMalloc(elf.path)
          ? `its allocator is statically linked into it: trace it with --lib ${elf.path}`
          : 'a statically linked program without symbols cannot be traced';
        throw new RbtraceError(`${target.command.argv[0]} is statically linked: it uses no libc`, { hint });
      }
    }
  }
  return openFile(systemOrFail(name));
}

function systemOrFail(name: string): string {
  const found = systemLibrary(name);
  if (!found) throw new RbtraceError(`cannot find library '${name}' on this system`, { hint: 'give its full path with --lib' });
  return found;
}

function definesMalloc(path: BinaryFile | string): boolean {
  try {
    return ElfFile.open(path).definesFunction('malloc');
  } catch {
    return false;
  }
}

/**
 * The functions of `binary` to probe (prefix + name), with file offsets.
 * malloc and free must be there; the others are probed when present.
 * Names at one address (glibc: aligned_alloc and memalign) are probed once.
 */
export function resolveAllocator(binary: BinaryFile | string, prefix: string, latency: boolean, libGiven = false): { probed: ProbedFunction[]; missing: string[] } {
  const elf = ElfFile.open(binary);
  const byName = new Map<string, number>();
  for (const s of elf.functions()) {
    const n = stripVersion(s.name);
    if (!byName.has(n) || s.table === '.dynsym') byName.set(n, s.value);
  }
  const missing = FUNCTIONS.filter((f) => !byName.has(prefix + f.name)).map((f) => prefix + f.name);
  const requiredMissing = FUNCTIONS.filter((f) => 'required' in f && !byName.has(prefix + f.name)).map((f) => prefix + f.name);
  if (requiredMissing.length) {
    const hint = elf.functions().length === 0
      ? 'the file has no symbols (stripped): give the allocator library with --lib'
      : prefix || libGiven ? `is it the allocator, with these names? nm -D ${binary} shows its names (--prefix adds one)`
        : 'give the allocator with --lib (and --prefix if its names have one)';
    throw new RbtraceError(`no ${requiredMissing.join(', ')} in ${binary}`, { hint });
  }
  const probed: ProbedFunction[] = [];
  const byAddress = new Map<number, ProbedFunction>();
  for (const f of FUNCTIONS) {
    const addr = byName.get(prefix + f.name);
    if (addr === undefined) continue;
    const same = byAddress.get(addr);
    if (same) {
      same.aliases.push(f.name);
      continue;
    }
    const offset = elf.fileOffset(addr);
    if (offset === undefined) throw new RbtraceError(`${prefix}${f.name} in ${binary} is not in a loadable segment`);
    const p: ProbedFunction = {
      name: f.name, id: f.id, program: f.program, symbol: prefix + f.name, offset, aliases: [],
      timed: latency || ALWAYS_TIMED.has(f.name),
    };
    byAddress.set(addr, p);
    probed.push(p);
  }
  // An alias of a realloc-family function must keep it timed (the nesting needs its return).
  for (const p of probed) if (p.aliases.some((a) => ALWAYS_TIMED.has(a))) p.timed = true;
  return { probed, missing };
}

/** One report: per process (pid 0 = all, without -P). */
export interface Report {
  pid: number;
  comm?: string;
  stats: Map<number, MsStats>; // by function id
  sizes: number[];             // log2 slots
}

const ZERO: MsStats = { count: 0, bytes: 0, timed: 0, total_ns: 0, max_ns: 0 };

/**
 * Counters since the previous report. Maps are read, never drained: a BPF
 * program adding to an entry while user space deletes it would lose counts,
 * and exact counts are the point. Entries of processes that are gone are
 * deleted after their last report (they cannot grow any more).
 */
class Reader {
  private prevStats = new Map<string, MsStats>();
  private prevHist = new Map<string, number>();
  private readonly stats;
  private readonly hist;
  private readonly counts;
  private readonly sizes;
  private readonly comms;

  constructor(obj: BpfObject<typeof SKELETON>, private readonly perProcess: boolean) {
    // -P: hashes keyed by pid; else per-CPU arrays (function, size slot) for pid 0.
    this.stats = obj.map('stats').typed(ms_key_layout, ms_stats_layout);
    this.hist = obj.map('hist').typed(ms_hist_key_layout, scalarLayout('u64'));
    this.counts = obj.map('counts').typed(scalarLayout('u32'), ms_stats_layout);
    this.sizes = obj.map('sizes').typed(scalarLayout('u32'), scalarLayout('u64'));
    this.comms = obj.map('comms').typed(scalarLayout('u32'), ms_comm_layout);
  }

  private statEntries(): [{ pid: number; func: number }, MsStats][] {
    if (this.perProcess) return this.stats.entries();
    return this.counts.entries().map(([k, v]) => [{ pid: 0, func: k.value }, v]);
  }

  private histEntries(): [{ pid: number; slot: number }, { value: number }][] {
    if (this.perProcess) return this.hist.entries();
    return this.sizes.entries().map(([k, v]) => [{ pid: 0, slot: k.value }, v]);
  }

  read(): Report[] {
    const reports = new Map<number, Report>();
    const reportOf = (pid: number) => {
      let r = reports.get(pid);
      if (!r) reports.set(pid, (r = { pid, stats: new Map(), sizes: new Array(DEFINES.MALLOCSTAT_SLOTS).fill(0) }));
      return r;
    };
    const seen = new Set<number>();
    for (const [k, v] of this.statEntries()) {
      const key = `${k.pid}:${k.func}`;
      const before = this.prevStats.get(key) ?? ZERO;
      this.prevStats.set(key, v);
      seen.add(k.pid);
      const d: MsStats = {
        count: v.count - before.count, bytes: v.bytes - before.bytes, timed: v.timed - before.timed,
        total_ns: v.total_ns - before.total_ns, max_ns: v.max_ns, // max: over the run
      };
      if (d.count > 0 || d.timed > 0) reportOf(k.pid).stats.set(k.func, d);
    }
    for (const [k, v] of this.histEntries()) {
      const key = `${k.pid}:${k.slot}`;
      const n = v.value - (this.prevHist.get(key) ?? 0);
      this.prevHist.set(key, v.value);
      if (n > 0 && k.slot < DEFINES.MALLOCSTAT_SLOTS) reportOf(k.pid).sizes[k.slot] += n;
    }
    if (this.perProcess) {
      for (const r of reports.values()) r.comm = this.comms.lookup({ value: r.pid })?.comm ?? readComm(r.pid);
      for (const pid of seen) if (!pidExists(pid)) this.forget(pid);
    }
    return [...reports.values()].sort((a, b) => a.pid - b.pid);
  }

  private forget(pid: number): void {
    for (const key of [...this.prevStats.keys()]) {
      if (!key.startsWith(`${pid}:`)) continue;
      this.stats.delete({ pid, func: Number(key.split(':')[1]) });
      this.prevStats.delete(key);
    }
    for (const key of [...this.prevHist.keys()]) {
      if (!key.startsWith(`${pid}:`)) continue;
      this.hist.delete({ pid, slot: Number(key.split(':')[1]) });
      this.prevHist.delete(key);
    }
    this.comms.delete({ value: pid });
  }
}

function displayName(p: ProbedFunction): string {
  return [p.name, ...p.aliases].join('/');
}

function functionsJson(r: Report, probed: ProbedFunction[]): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const p of probed) {
    const s = r.stats.get(p.id) ?? ZERO;
    const f: Record<string, unknown> = { count: s.count, bytes: s.bytes };
    if (p.timed) {
      f.total_ns = s.total_ns;
      f.timed = s.timed;
      f.avg_ns = s.timed ? Math.round(s.total_ns / s.timed) : 0;
      f.max_ns = s.max_ns;
    }
    if (p.aliases.length) f.aliases = p.aliases;
    out[p.name] = f;
  }
  return out;
}

function renderReport(ctx: ToolContext, r: Report, probed: ProbedFunction[], perProcess: boolean, cg: CgroupFields = {}): string {
  let text = '';
  if (perProcess) text += ctx.color.bold(term`PID ${r.pid} (${r.comm ?? '?'})` + cgroupSuffix(cg, Boolean(ctx.target.cgroup))) + '\n';
  const anyTimed = probed.some((p) => p.timed);
  const headers = ['FUNC', 'CALLS', 'BYTES', ...(anyTimed ? ['AVG', 'MAX', 'TOTAL'] : [])];
  const rows = probed.map((p) => {
    const s = r.stats.get(p.id) ?? ZERO;
    const row: string[] = [displayName(p), formatCount(s.count), p.name === 'free' ? '-' : formatBytes(s.bytes)];
    if (anyTimed) {
      if (p.timed && s.timed > 0) row.push(formatDuration(s.total_ns / s.timed), formatDuration(s.max_ns), formatDuration(s.total_ns));
      else row.push('-', '-', '-');
    }
    return row;
  });
  text += renderTable(headers, rows, { align: headers.map((_, i) => (i === 0 ? 'left' : 'right')), color: ctx.color });
  const hist = formatLog2Hist(r.sizes, 'bytes');
  if (hist) text += '\n' + hist;
  return text;
}

export default defineTool<MallocstatOptions>({
  name: 'mallocstat',
  summary: 'malloc/calloc/realloc/free counts, sizes and latency of any process',
  help: `Examples:
  rbtrace mallocstat -p 1234                  allocator calls of a process, until Ctrl-C
  rbtrace mallocstat -L -- ./myprog           with the latency of every function
  rbtrace mallocstat -P -i 5                  every process, every 5 seconds
  rbtrace mallocstat --lib libjemalloc.so.2 --prefix je_ -p 1234
  rbtrace mallocstat --json -- ruby app.rb | jq .functions.realloc
  rbtrace mallocstat --leaks -- ./myprog     blocks never freed, by the stack that allocated them
  rbtrace mallocstat --leaks --older 60 -i 60 -p 1234   blocks live for a minute or more, every minute`,
  options(cmd: Command) {
    cmd
      .option('-L, --latency', 'time every function (realloc and reallocarray are always timed)')
      .option('-P, --per-process', 'one report per process')
      .option('--lib <lib>', 'the allocator: a library name or path (default: the libc the target uses)')
      .option('--prefix <prefix>', "prefix of the allocator's function names (e.g. je_)", '')
      .option('--leaks', 'also report blocks not freed at the end (and each -i), by allocating stack, largest first')
      .addOption(new Option('--older <secs>', 'with --leaks: only blocks allocated at least this long before the report')
        .argParser(secondsParser('--older', { min: 0 })))
      .addOption(new Option('--max-allocs <n>', `with --leaks: live blocks tracked at most (default ${DEFAULT_MAX_ALLOCS}); more are counted and reported`)
        .argParser(integerParser('--max-allocs', { min: 1, max: 100_000_000, example: '5000000' })));
  },
  kernels: { best: '5.10 uprobe' },
  figures: (opts) => MALLOCSTAT({ ...opts, functions: FUNCTIONS.map((f) => f.name) }),
  probe: () => {
    // doctor: can a uprobe program on libc's malloc load and attach here?
    const binary = findAllocator({}, undefined);
    const malloc = resolveAllocator(binary, '', false).probed.find((p) => p.name === 'malloc')!;
    return probeUprobe(binary, malloc);
  },
  run(ctx, opts) {
    if (!opts.leaks && (opts.older !== undefined || opts.maxAllocs !== undefined)) {
      throw new UsageError(`${opts.older !== undefined ? '--older' : '--max-allocs'} needs --leaks`, 'add --leaks');
    }
    const leaks = Boolean(opts.leaks);
    const maxAllocs = opts.maxAllocs ?? DEFAULT_MAX_ALLOCS;
    const binary = findAllocator({ pid: ctx.target.pid, command: ctx.target.command }, opts.lib);
    const { probed, missing } = resolveAllocator(binary, opts.prefix, Boolean(opts.latency), opts.lib !== undefined);
    if (missing.length) ctx.log.verbose(`not in ${binary} (not probed): ${missing.join(', ')}`);
    for (const p of probed) if (p.aliases.length) ctx.log.verbose(`${p.aliases.join(', ')}: same code as ${p.name} in ${binary}, counted as ${p.name}`);

    const timedMask = probed.filter((p) => p.timed).reduce((m, p) => m | (1 << p.id), 0);
    // --leaks: an allocation's address is known at its return only.
    const returns = probed.filter((p) => p.timed || (leaks && p.name !== 'free'));
    const retMask = returns.reduce((m, p) => m | (1 << p.id), 0);
    // -p: the kernel puts breakpoints in that process only. -- CMD follows
    // descendants, so probes cover every process and BPF filters by pid.
    const uprobePid = ctx.target.pid ?? -1;
    const loaded = loadUserProbes(ctx, {
      skeleton: SKELETON,
      pathName: 'uprobe',
      note: `${binary}: ${probed.map(displayName).join(', ')}`,
      programs: [...probed.map((p) => p.program), 'ms_return', 'ms_exit', ...(leaks ? ['ms_exec' as const] : [])],
      rodata: { per_process: Boolean(opts.perProcess), self_tgid: process.pid, timed_mask: timedMask, ret_mask: retMask, leaks },
      configure: (obj) => configureLeaks(obj, leaks, maxAllocs),
      attach: (obj) => {
        const links: BpfLink[] = [];
        // Before any entry: a thread's `active` entry must go with the thread.
        links.push(obj.program('ms_exit').attachRawTracepoint('sched_process_exit'));
        if (leaks) links.push(obj.program('ms_exec').attachRawTracepoint('sched_process_exec'));
        // Returns first: an entry recorded in `active` must never miss its return.
        for (const p of returns) {
          links.push(obj.program('ms_return').attachUprobe({ binary, offset: p.offset, retprobe: true, pid: uprobePid }));
        }
        for (const p of probed) links.push(obj.program(p.program).attachUprobe({ binary, offset: p.offset, pid: uprobePid }));
        return links;
      },
    });
    ctx.log.verbose(`uprobes on ${probed.map((p) => `${p.symbol}@0x${p.offset.toString(16)}${p.timed ? ' (timed)' : returns.includes(p) ? ' (return)' : ''}`).join(', ')}`);
    let tracker: LeakTracker | undefined;
    if (leaks) {
      tracker = new LeakTracker(loaded.obj, { perProcess: Boolean(opts.perProcess), command: ctx.target.command?.argv[0], olderS: opts.older, maxAllocs });
      const t = tracker;
      if (ctx.target.pid) t.notePid(ctx.target.pid);
      ctx.ringBuffer(loaded.obj, 'ms_events', (rec) => t.onEvent(rec));
    }
    if (!opts.json) ctx.log.warn(`Tracing ${probed.map(displayName).join(', ')} in ${binary}... Hit Ctrl-C to end.`);

    const perProcess = Boolean(opts.perProcess);
    const reader = new Reader(loaded.obj, perProcess);
    let intervals = 0;
    const report = (final: boolean) => {
      const now = new Date();
      let reports = reader.read();
      for (const r of reports) ctx.report(mallocstatDelta(r, probed));
      if (!perProcess && reports.length === 0) reports = [{ pid: 0, stats: new Map(), sizes: new Array(DEFINES.MALLOCSTAT_SLOTS).fill(0) }];
      const empty = reports.every((r) => r.stats.size === 0);
      if (final && intervals > 0 && empty && !tracker) return; // nothing since the last interval's report
      if (!final) intervals++;
      let leakReport = tracker?.read(final);
      if (leakReport && final) for (const w of leakWarnings(leakReport, maxAllocs)) ctx.log.warn(w);
      for (const r of reports) {
        // -P: the process's cgroup, read now (omitted once it is gone).
        const cg = perProcess ? cgroupFieldsOfPid(r.pid) : {};
        if (opts.json) {
          const rec: Record<string, unknown> = {
            time: now.toISOString(),
            pid: perProcess ? r.pid : ctx.target.tgid ?? null,
          };
          if (perProcess) Object.assign(rec, { comm: r.comm, ...cg });
          if (opts.interval !== undefined) rec.interval_s = opts.interval;
          rec.functions = functionsJson(r, probed);
          rec.sizes = log2HistToJson(r.sizes);
          if (leakReport) Object.assign(rec, leaksJson(leakReport, maxAllocs));
          if (final) rec.final = true;
          ctx.out.record(rec);
          leakReport = undefined; // -P: the leaks go with the first record
        } else {
          ctx.out.write(renderReport(ctx, r, probed, perProcess, cg) + '\n');
        }
      }
      if (leakReport && !opts.json) ctx.out.write(renderLeaks(ctx, leakReport, { perProcess, olderS: opts.older, maxAllocs }) + '\n');
      // -P with no process to report: the leaks in a record of their own.
      else if (leakReport) ctx.out.record({ time: now.toISOString(), ...leaksJson(leakReport, maxAllocs), ...(final ? { final: true } : {}) });
    };
    ctx.session.onInterval(() => {
      if (!opts.json) ctx.out.write(ctx.color.dim(new Date().toTimeString().slice(0, 8)) + '\n');
      report(false);
    });
    ctx.session.onFinish(() => report(true));
  },
});

/** For doctor: really load the malloc probe and attach it to the system's libc (for no process), then let go. */
function probeUprobe(binary: BinaryFile, malloc: ProbedFunction): string {
  // pid: this process only, so no other process ever traps.
  probeUserProbes(SKELETON, [malloc.program], (obj) => obj.program(malloc.program).attachUprobe({ binary, offset: malloc.offset, pid: process.pid }));
  return `uprobe (${binary}:${malloc.symbol})`;
}
