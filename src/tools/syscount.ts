// syscount: strace -c's figures without ptrace's slowdown. Counts, errors and
// latency per syscall (or per process) are summed in the kernel, per CPU, by
// src/bpf/syscount.bpf.c; this side reads the maps at each report (-i) or at
// the end, and prints bcc syscount's layout, strace -c -w's table, log2
// histograms or NDJSON.
import { Option, type Command } from 'commander';
import { defineTool, type ToolContext } from '../core/tool.js';
import { probePaths, type AttachPath } from '../core/paths.js';
import { errnoParser, integerParser, pidParser } from '../core/parsers.js';
import { hasTaskStorage } from '../core/features.js';
import { hostArch, type ArchInfo } from '../core/arch.js';
import { UsageError } from '../core/errors.js';
import type { BpfObject } from '../core/object.js';
import type { TypedMap } from '../core/maps.js';
import { scalarLayout } from '../core/layout.js';
import { errnoName, syscallName, syscallNumber } from '../core/names.js';
import { formatLog2Hist, log2HistToJson } from '../core/output/histogram.js';
import { renderTable } from '../core/output/table.js';
import { cgroupColumns, cgroupFieldsOfPid, type CgroupFields } from '../core/cgroup.js';
import { term } from '../core/output/format.js';
import { formatStraceTable, sortStraceRows } from '../core/output/strace-table.js';
import { SYSCOUNT } from './common/figures.js';
import { readSyscallTotals } from './syscount/collect.js';
import {
  sc_stats_layout, sc_proc_stats_layout, sc_hist_layout, DEFINES, SKELETON, type ProgramName,
  type ScStats, type ScProcStats,
} from '../generated/syscount.js';

export interface SyscountOptions {
  latency?: boolean;   // -L
  hist?: boolean;      // --hist
  process?: boolean;   // -P
  failures?: boolean;  // -x
  errno?: number;      // -e
  syscall?: number[];  // --syscall
  top?: number;        // -T
  all?: boolean;       // --all
  tid?: number;        // --tid
  comm?: string;       // -c
  strace?: boolean;    // --strace / --no-strace (default: on with -- CMD)
}

/**
 * Which programs a path loads. Count mode needs only the exit side, in its
 * *_count variant that uses no start map. Latency keeps each thread's entry
 * time in task storage (5.11+) or, without it (5.10), in a hash keyed by
 * thread id (the *h_* programs): see syscount.bpf.c.
 */
export function pathsFor(latency: boolean, taskStorage = true, arch: ArchInfo = hostArch()): AttachPath<typeof SKELETON>[] {
  const both = (task: ProgramName[], tid: ProgramName[], count: ProgramName): ProgramName[] => {
    if (!latency) return [count];
    return taskStorage ? task : tid;
  };
  // The syscall dispatcher and its programs differ per architecture (src/core/arch.ts).
  const d = arch.syscallDispatcher;
  const fentry = (latency ? [d.enter, d.exit] : [d.count]).map(dispatcherProgram);
  return [
    {
      name: 'fentry',
      programs: fentry,
      attachTargets: Object.fromEntries(fentry.map((p) => [p, d.func])),
      note: arch.node === 'x64'
        ? 'fentry/fexit on x64_sys_call, the dispatcher of native syscalls on x86_64 since Linux 6.9; other tasks keep the fast syscall path'
        : `fentry/fexit on ${d.func}, the dispatcher of every ${arch.machine} syscall (AArch32 tasks' are skipped); other tasks keep the fast syscall path`,
    },
    {
      name: 'tp_btf',
      programs: both(['tb_enter', 'tb_exit'], ['tbh_enter', 'tbh_exit'], 'tb_count'),
      note: 'raw_syscalls sys_enter/sys_exit as BTF-typed tracepoints (no kprobe path: a kretprobe per syscall costs more than these)',
    },
    {
      name: 'raw_tp',
      programs: both(['rt_enter', 'rt_exit'], ['rth_enter', 'rth_exit'], 'rt_count'),
      note: 'raw_syscalls sys_enter/sys_exit raw tracepoints (no tracefs needed)',
    },
  ];
}

export const ATTACH_PATHS = pathsFor(true);

/** src/core/arch.ts names the dispatcher's programs per architecture: checked against the skeleton here. */
function dispatcherProgram(name: string): ProgramName {
  if (!Object.hasOwn(SKELETON.programs, name)) throw new Error(`syscount.bpf.c has no program ${name} (named by src/core/arch.ts)`);
  return name as ProgramName;
}

/** One syscall's figures for a report. */
export interface SyscallRow {
  nr: number;
  name: string;
  count: number;
  errors: number;
  total_ns: number;
  hist?: number[];
}

/** One process's figures for a report (-P). */
export interface ProcessRow {
  pid: number;
  comm: string;
  count: number;
  errors: number;
  total_ns: number;
}

interface Mode {
  byProcess: boolean;
  latency: boolean;
  hist: boolean;
  strace: boolean;
  top: number; // Infinity for all
}

const u32 = scalarLayout('u32');

/** Parse --syscall: names (or numbers) separated by commas. */
export function parseSyscallList(text: string): number[] {
  const nrs: number[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const nr = /^\d+$/.test(part) ? Number(part) : syscallNumber(part);
    if (nr === undefined) throw new UsageError(`--syscall: unknown syscall '${part}'`, 'give names as in strace -e trace=, e.g. --syscall read,openat');
    if (nr >= DEFINES.SYSCOUNT_FILTER_BYTES * 8) throw new UsageError(`--syscall: number ${nr} is beyond the filter's ${DEFINES.SYSCOUNT_FILTER_BYTES * 8}`);
    nrs.push(nr);
  }
  if (nrs.length === 0) throw new UsageError('--syscall wants at least one syscall name', 'e.g. --syscall read,write');
  return nrs;
}

/** -c: a task name, as the kernel keeps it (15 bytes and a NUL). */
export function parseComm(text: string): string {
  if (text.length === 0) throw new UsageError('-c wants a process name', 'e.g. -c nginx');
  return text.slice(0, 15);
}

/** -e: an errno name or number (1 to 4095). */
export const parseErrno = errnoParser('-e');

/** -T: at most the rows a report can have (every pid, with -P). */
const MAX_TOP = 4194304;

function bitmap(nrs: number[]): number[] {
  const bits = new Array<number>(DEFINES.SYSCOUNT_FILTER_BYTES).fill(0);
  for (const nr of nrs) bits[nr >> 3] |= 1 << (nr & 7);
  return bits;
}

/** Entries of the per-syscall array: the arch's highest number + 1, within the object's ceiling. */
function syscallSlots(): number {
  let max = 0;
  for (let nr = 0; nr < 1024; nr++) if (!syscallName(nr).startsWith('[unknown')) max = nr;
  return Math.min(1024, max + 1);
}

/** The syscall numbers syscount.bpf.c treats specially (execve for -- CMD, rt_sigreturn's -1, fork's second return). */
export function syscallNumbersRodata(): Record<string, number> {
  const nr = (name: string) => syscallNumber(name) ?? -1;
  return {
    nr_execve: nr('execve'), nr_execveat: nr('execveat'), nr_rt_sigreturn: nr('rt_sigreturn'),
    nr_clone: nr('clone'), nr_clone3: nr('clone3'), nr_fork: nr('fork'), nr_vfork: nr('vfork'),
  };
}

export function sizeMaps(obj: BpfObject<typeof SKELETON>, mode: Pick<Mode, 'byProcess' | 'latency' | 'hist'>, taskStorage = true): void {
  const slots = syscallSlots();
  // Only the start map the loaded programs use is created: none in count
  // mode, and never task storage where the kernel has none (5.10).
  obj.map('starts').autocreate = mode.latency && taskStorage;
  obj.map('starts_tid').autocreate = mode.latency && !taskStorage;
  obj.map('syscalls').maxEntries = slots;
  obj.map('hists').maxEntries = mode.hist ? slots : 1;
  // Unused maps shrink to one entry (hashes are preallocated).
  if (!mode.byProcess) obj.map('procs').maxEntries = 1;
  obj.map('errnos').maxEntries = 1; // only the exporter counts per errno (it resizes this)
}

function sub(a: number, b: number | undefined): number {
  return a - (b ?? 0);
}

/**
 * Reads the maps and turns cumulative per-syscall figures into per-report
 * ones. Arrays cannot be deleted from, so each report is the difference with
 * the previous snapshot (exact, nothing lost between read and reset); the
 * per-process hash is drained instead, so exited pids do not pile up.
 */
class Collector {
  private readonly syscalls: TypedMap<{ value: number }, ScStats>;
  private readonly rare: TypedMap<{ value: number }, ScStats>;
  private readonly procs: TypedMap<{ value: number }, ScProcStats>;
  private readonly hists: TypedMap<{ value: number }, { slots: number[] }>;
  private readonly slots: number;
  private prev = new Map<number, ScStats>();
  private prevHist = new Map<number, number[]>();

  constructor(obj: BpfObject<typeof SKELETON>) {
    this.syscalls = obj.map('syscalls').typed(u32, sc_stats_layout);
    this.rare = obj.map('rare').typed(u32, sc_stats_layout);
    this.procs = obj.map('procs').typed(u32, sc_proc_stats_layout);
    this.hists = obj.map('hists').typed(u32, sc_hist_layout);
    this.slots = obj.map('syscalls').maxEntries;
  }

  syscallRows(): SyscallRow[] {
    const now = readSyscallTotals(this.syscalls, this.rare, this.slots);
    const rows: SyscallRow[] = [];
    for (const [nr, v] of now) {
      const p = this.prev.get(nr);
      const count = sub(v.count, p?.count);
      if (count <= 0) continue;
      rows.push({ nr, name: syscallName(nr), count, errors: sub(v.errors, p?.errors), total_ns: sub(v.total_ns, p?.total_ns) });
    }
    this.prev = now;
    return rows;
  }

  /** Histogram of one syscall since the last call for it. */
  histOf(nr: number): number[] {
    const cur = this.hists.lookup({ value: nr })?.slots ?? [];
    const before = this.prevHist.get(nr);
    this.prevHist.set(nr, cur);
    return cur.map((v, i) => v - (before?.[i] ?? 0));
  }

  processRows(): ProcessRow[] {
    return this.procs.drain().map(([k, v]) => ({ pid: k.value, comm: v.comm, count: v.count, errors: v.errors, total_ns: v.total_ns }));
  }
}

/** Sort and cut to the top N: by time with latency, else by count. */
export function topRows<T extends { count: number; total_ns: number }>(rows: T[], byTime: boolean, top: number): { shown: T[]; omitted: number } {
  const key = (r: T) => (byTime ? r.total_ns : r.count);
  const sorted = [...rows].sort((a, b) => key(b) - key(a) || b.count - a.count);
  const shown = Number.isFinite(top) ? sorted.slice(0, top) : sorted;
  return { shown, omitted: sorted.length - shown.length };
}

function usecs(ns: number): string {
  return (ns / 1000).toFixed(3);
}

/** bcc syscount's layout, plus an ERRORS column and, with -L, the average. */
export function formatSyscallTable(rows: SyscallRow[], latency: boolean): string {
  const headers = ['SYSCALL', 'COUNT', 'ERRORS', ...(latency ? ['TIME (us)', 'AVG (us)'] : [])];
  const body = rows.map((r) => [r.name, r.count, r.errors, ...(latency ? [usecs(r.total_ns), usecs(r.total_ns / r.count)] : [])]);
  return renderTable(headers, body, { align: ['left', 'right', 'right', 'right', 'right'] });
}

/** -P: with CGROUP (--cgroup) and CONTAINER (when a row is in one) columns (src/core/cgroup.ts). */
export function formatProcessTable(rows: (ProcessRow & CgroupFields)[], latency: boolean, withCgroup = false): string {
  const cg = cgroupColumns(rows, { cgroup: withCgroup });
  const headers = ['PID', 'COMM', ...cg.headers, 'COUNT', 'ERRORS', ...(latency ? ['TIME (us)', 'AVG (us)'] : [])];
  const body = rows.map((r) => [r.pid, r.comm, ...cg.cells(r), r.count, r.errors, ...(latency ? [usecs(r.total_ns), usecs(r.total_ns / r.count)] : [])]);
  return renderTable(headers, body, { align: ['right', 'left', ...cg.headers.map(() => 'left' as const), 'right', 'right', 'right', 'right'] });
}

function resolveMode(ctx: ToolContext, opts: SyscountOptions): Mode {
  const byProcess = Boolean(opts.process);
  if (byProcess && opts.hist) throw new UsageError('-P and --hist cannot be used together', 'histograms are per syscall: drop -P, or use -P -L for per-process time');
  if (byProcess && opts.strace) throw new UsageError('-P and --strace cannot be used together', "strace -c's table is per syscall: drop one of them");
  if (opts.all && opts.top !== undefined) throw new UsageError('-T and --all cannot be used together', 'pick one');
  // strace's table is the natural summary of one command, as `strace -c CMD` prints.
  const strace = opts.strace ?? (ctx.target.following && !byProcess && !opts.hist);
  const hist = Boolean(opts.hist);
  const latency = Boolean(opts.latency) || hist || strace;
  // strace -c prints every syscall; bcc's syscount the top 10.
  const top = opts.all ? Infinity : opts.top ?? (strace ? Infinity : 10);
  return { byProcess, latency, hist, strace, top };
}

export default defineTool<SyscountOptions>({
  name: 'syscount',
  summary: 'count syscalls and their latency, like strace -c without the slowdown',
  help: `Examples:
  rbtrace syscount                     top 10 syscalls of the whole system, at Ctrl-C
  rbtrace syscount -L -i 1             with time spent, every second
  rbtrace syscount -P -p 1234          per process (here one)
  rbtrace syscount -x -e ENOENT        only calls that failed with ENOENT
  rbtrace syscount --hist --syscall read,write -p 1234
  rbtrace syscount -- make -j2         strace -c -w's table for a command
  rbtrace syscount --json -i 5 -d 60`,
  options(cmd: Command) {
    cmd
      .option('-L, --latency', 'also total and average time in each syscall')
      .option('--hist', 'a log2 latency histogram (ns) per syscall')
      .option('-P, --process', 'per process (pid and comm) instead of per syscall')
      .option('-x, --failures', 'only calls that failed (returned an errno)')
      .addOption(new Option('-e, --errno <errno>', 'only calls that failed with this errno (name like ENOENT, or number 1 to 4095)').argParser(parseErrno))
      .addOption(new Option('--syscall <names>', 'only these syscalls (comma-separated names or numbers)').argParser(parseSyscallList))
      .addOption(new Option('-T, --top <n>', 'print the top N rows (default 10; all with --strace)').argParser(integerParser('-T', { min: 1, max: MAX_TOP, example: '20' })))
      .option('--all', 'print every row')
      .addOption(new Option('--tid <tid>', 'only this thread (a thread id, 1 to 4194304)').argParser(pidParser('--tid', 'a thread id')))
      .addOption(new Option('-c, --comm <comm>', 'only tasks with this name (comm, first 15 characters)').argParser(parseComm))
      .option('--strace', "strace -c -w's table: % time, seconds, usecs/call, calls, errors (default with -- CMD)")
      .option('--no-strace', "with -- CMD, bcc syscount's layout instead of strace's table");
  },
  // Latency mode: the one whose start map depends on the kernel.
  probe: () => {
    const taskStorage = hasTaskStorage();
    const path = probePaths(SKELETON, pathsFor(true, taskStorage), (obj) => sizeMaps(obj, { byProcess: false, latency: true, hist: false }, taskStorage));
    return taskStorage ? path : `${path}; -L: entry times in a thread-id hash (no task storage: 5.11+)`;
  },
  kernels: { best: '6.9 fentry (x64_sys_call; also late 6.1.y, e.g. 6.1.192; arm64: invoke_syscall)', fallback: '5.10 tp_btf, raw_tp (-L: a thread-id hash before 5.11)' },
  figures: SYSCOUNT,
  run(ctx, opts) {
    const mode = resolveMode(ctx, opts);
    const onlyErrno = opts.errno ?? 0;
    const nrs = opts.syscall;
    const comm = opts.comm;

    const taskStorage = hasTaskStorage();
    if (mode.latency && !taskStorage) {
      ctx.log.verbose('no task storage on this kernel (BPF_MAP_TYPE_TASK_STORAGE is 5.11+): entry times go in a hash keyed by thread id');
    }
    const paths = pathsFor(mode.latency, taskStorage);
    const loaded = ctx.load({
      skeleton: SKELETON,
      paths,
      rodata: {
        by_process: mode.byProcess,
        want_latency: mode.latency,
        want_hist: mode.hist,
        only_failed: Boolean(opts.failures) || onlyErrno !== 0,
        only_errno: onlyErrno,
        targ_tid: opts.tid ?? 0,
        self_tgid: process.pid,
        filter_syscalls: nrs !== undefined,
        syscall_bitmap: bitmap(nrs ?? []),
        filter_comm: comm !== undefined,
        targ_comm: comm ?? '',
        ...syscallNumbersRodata(),
      },
      configure: (obj) => sizeMaps(obj, mode, taskStorage),
    });
    if (loaded.path.name !== 'fentry') {
      ctx.log.verbose(`fentry needs ${hostArch().syscallDispatcher.func} (x86_64: Linux 6.9+; arm64: invoke_syscall); without it no single kernel function sees every syscall, so the raw_syscalls tracepoints are used`);
    }

    const collector = new Collector(loaded.obj);
    let lastReport = Date.now();
    if (!opts.json && !ctx.target.following) {
      const what = opts.failures || onlyErrno ? 'failed syscalls' : 'syscalls';
      process.stderr.write(`Tracing ${what}${mode.byProcess ? ' per process' : ''}, printing ${Number.isFinite(mode.top) ? `top ${mode.top}` : 'all'}... Ctrl-C to end.\n`);
    }

    const report = (periodic: boolean) => {
      const now = Date.now();
      const intervalS = (now - lastReport) / 1000;
      lastReport = now;
      const time = new Date(now);
      const stamp = periodic && !opts.json ? `[${time.toTimeString().slice(0, 8)}]\n` : '';
      if (mode.byProcess) {
        const all = collector.processRows();
        ctx.report({ processes: all.map((r) => ({ ...r, total_ns: mode.latency ? r.total_ns : undefined })) });
        const { shown: top, omitted } = topRows(all, mode.latency, mode.top);
        // Read at report time: a process gone by then has none (omitted).
        const shown = top.map((r) => ({ ...r, ...cgroupFieldsOfPid(r.pid) }));
        if (opts.json) {
          ctx.out.record({
            time: time.toISOString(), interval_s: intervalS,
            processes: shown.map((r) => ({ pid: r.pid, comm: r.comm, cgroup: r.cgroup, container: r.container, count: r.count, errors: r.errors, ...(mode.latency ? { total_ns: r.total_ns } : {}) })),
            omitted,
          });
        } else {
          ctx.out.write(stamp + formatProcessTable(shown, mode.latency, Boolean(ctx.target.cgroup)) + (periodic ? '\n' : ''));
        }
        return;
      }
      const rows = collector.syscallRows();
      const { shown, omitted } = mode.strace
        ? (() => { const s = sortStraceRows(rows.map((r) => ({ ...r, calls: r.count }))); const k = Number.isFinite(mode.top) ? s.slice(0, mode.top) : s; return { shown: k, omitted: s.length - k.length }; })()
        : topRows(rows, mode.latency, mode.top);
      if (mode.hist) for (const r of shown) r.hist = collector.histOf(r.nr);
      ctx.report({ syscalls: rows.map((r) => ({ ...r, total_ns: mode.latency ? r.total_ns : undefined })) });
      if (opts.json) {
        const total = rows.reduce((t, r) => ({ count: t.count + r.count, errors: t.errors + r.errors, total_ns: t.total_ns + r.total_ns }), { count: 0, errors: 0, total_ns: 0 });
        ctx.out.record({
          time: time.toISOString(), interval_s: intervalS,
          syscalls: shown.map((r) => ({
            name: r.name, nr: r.nr, count: r.count, errors: r.errors,
            ...(mode.latency ? { total_ns: r.total_ns, avg_ns: Math.round(r.total_ns / r.count) } : {}),
            ...(r.hist ? { hist: log2HistToJson(r.hist) } : {}),
          })),
          total: mode.latency ? total : { count: total.count, errors: total.errors },
          omitted,
        });
        return;
      }
      let text = stamp;
      if (mode.strace) text += formatStraceTable(shown.map((r) => ({ name: r.name, calls: r.count, errors: r.errors, total_ns: r.total_ns })));
      else text += formatSyscallTable(shown, mode.latency);
      if (mode.hist) {
        for (const r of shown) {
          text += term`\nsyscall = ${r.name}, count = ${r.count}, errors = ${r.errors}, avg = ${usecs(r.total_ns / r.count)} us\n`;
          text += formatLog2Hist(r.hist!, 'nsecs');
        }
      }
      ctx.out.write(text + (periodic ? '\n' : ''));
    };

    const session = ctx.session;
    session.onInterval(() => report(true));
    session.onFinish((reason) => {
      // With -i, -d ends 50 ms after the last interval report: that report
      // already covered the run, so do not add a near-empty one.
      if (opts.interval !== undefined && reason === 'duration' && Date.now() - lastReport < 250) return;
      report(false);
    });
    if (onlyErrno) ctx.log.verbose(`only calls failing with ${errnoName(onlyErrno)}`);
  },
});
