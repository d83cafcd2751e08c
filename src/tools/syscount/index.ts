// syscount: strace -c's figures without ptrace's slowdown. Counts, errors and
// latency per syscall (or per process) are summed in the kernel, per CPU, by
// src/bpf/syscount.bpf.c (probe.ts loads it); collect.ts reads the maps at
// each report (-i) or at the end, and views.ts prints bcc syscount's layout,
// strace -c -w's table, log2 histograms or NDJSON.
import { Option, type Command } from 'commander';
import { defineTool, type ToolContext } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { errnoParser, integerParser, pidParser } from '../../core/parsers.js';
import { hasTaskStorage } from '../../core/bpf/features.js';
import { hostArch } from '../../core/bpf/arch.js';
import { UsageError } from '../../core/errors.js';
import { errnoName, syscallNames, syscallNumber } from '../../core/linux/names.js';
import { cgroupFieldsOfPid } from '../../core/linux/cgroup.js';
import { SYSCOUNT } from '../common/figures.js';
import { SKELETON } from '../../generated/syscount.js';
import { FILTER_SYSCALLS, loadSpec, pathsFor, sizeMaps } from './probe.js';
import { SyscountCollector } from './collect.js';
import {
  processFigures, processRecord, shownSyscalls, unfinishedLine, syscallFigures, syscallRecord, syscallText, formatProcessTable, topRows,
  type ViewMode,
} from './views.js';

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
  milliseconds?: boolean; // -m
}

/** Parse --syscall: names (or numbers) separated by commas. */
export function parseSyscallList(text: string): number[] {
  const nrs: number[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const nr = /^\d+$/.test(part) ? Number(part) : syscallNumber(part);
    if (nr === undefined) throw new UsageError(`--syscall: unknown syscall '${part}'`, 'give names as in strace -e trace=, e.g. --syscall read,openat');
    if (nr >= FILTER_SYSCALLS) throw new UsageError(`--syscall: number ${nr} is beyond the filter's ${FILTER_SYSCALLS}`);
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

/** -l: "NR NAME" per syscall of the host's table, by number. */
function syscallList(): string {
  const names = syscallNames();
  return names.map((n) => `${String(syscallNumber(n)).padStart(4)} ${n}\n`).join('');
}

function resolveMode(ctx: ToolContext, opts: SyscountOptions): ViewMode {
  const byProcess = Boolean(opts.process);
  if (byProcess && opts.hist) throw new UsageError('-P and --hist cannot be used together', 'histograms are per syscall: drop -P, or use -P -L for per-process time');
  if (byProcess && opts.strace) throw new UsageError('-P and --strace cannot be used together', "strace -c's table is per syscall: drop one of them");
  if (opts.all && opts.top !== undefined) throw new UsageError('-T and --all cannot be used together', 'pick one');
  // strace's table is the natural summary of one command, as `strace -c CMD` prints.
  const strace = opts.strace ?? (ctx.target.following && !byProcess && !opts.hist);
  const hist = Boolean(opts.hist);
  const latency = Boolean(opts.latency) || hist || strace || Boolean(opts.milliseconds);
  // strace -c prints every syscall; bcc's syscount the top 10.
  const top = opts.all ? Infinity : opts.top ?? (strace ? Infinity : 10);
  if (opts.milliseconds && strace) throw new UsageError("-m and strace's table cannot be used together", "strace -c's table has seconds and usecs/call: add --no-strace for bcc's layout in ms");
  return { byProcess, latency, hist, strace, top, timeUnit: opts.milliseconds ? 'ms' : 'us' };
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
      .option('--no-strace', "with -- CMD, bcc syscount's layout instead of strace's table")
      .option('-m, --milliseconds', "times in milliseconds, not microseconds (bcc syscount's -m; implies -L)")
      .option('-l, --list', 'list the syscall names and numbers of this architecture, and exit (bcc syscount -l)');
    // -l needs nothing traced: it answers while the options are parsed.
    cmd.on('option:list', () => {
      process.stdout.write(syscallList());
      process.exit(0);
    });
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

    const taskStorage = hasTaskStorage();
    if (mode.latency && !taskStorage) {
      ctx.log.verbose('no task storage on this kernel (BPF_MAP_TYPE_TASK_STORAGE is 5.11+): entry times go in a hash keyed by thread id');
    }
    const loaded = ctx.load(loadSpec(mode, { failures: opts.failures, errno: opts.errno, tid: opts.tid, syscalls: opts.syscall, comm: opts.comm }, taskStorage));
    if (loaded.path.name !== 'fentry') {
      ctx.log.verbose(`fentry needs ${hostArch().syscallDispatcher.func} (x86_64: Linux 6.9+; arm64: invoke_syscall); without it no single kernel function sees every syscall, so the raw_syscalls tracepoints are used`);
    }

    const collector = new SyscountCollector(loaded.obj);
    let lastReport = Date.now();
    if (!opts.json && !ctx.target.following) {
      const what = opts.failures || onlyErrno ? 'failed syscalls' : 'syscalls';
      ctx.banner(`Tracing ${what}${mode.byProcess ? ' per process' : ''}, printing ${Number.isFinite(mode.top) ? `top ${mode.top}` : 'all'}... Ctrl-C to end.`);
    }

    const report = (periodic: boolean) => {
      const now = Date.now();
      const when = { time: new Date(now), intervalS: (now - lastReport) / 1000 };
      lastReport = now;
      // With -i every block has its time, the last one (at Ctrl-C or -d) too.
      const stamp = (periodic || opts.interval !== undefined) && !opts.json ? `[${when.time.toTimeString().slice(0, 8)}]\n` : '';
      const end = periodic ? '\n' : '';
      if (mode.byProcess) {
        const all = collector.processRows();
        ctx.report(processFigures(all, mode.latency));
        const { shown: top, omitted } = topRows(all, mode.latency, mode.top);
        // Read at report time: a process gone by then has none (omitted).
        const shown = top.map((r) => ({ ...r, ...cgroupFieldsOfPid(r.pid) }));
        if (opts.json) ctx.out.record(processRecord(when, shown, omitted, mode.latency));
        else ctx.out.write(stamp + formatProcessTable(shown, mode.latency, Boolean(ctx.target.cgroup), mode.timeUnit) + end);
        return;
      }
      const rows = collector.syscallRows();
      const { shown, omitted } = shownSyscalls(rows, mode);
      if (mode.hist) for (const r of shown) r.hist = collector.histOf(r.nr);
      ctx.report(syscallFigures(rows, mode.latency));
      const notCounted = unfinishedLine(collector.unfinished);
      if (notCounted) ctx.log.verbose(notCounted);
      if (opts.json) ctx.out.record(syscallRecord(when, rows, shown, omitted, mode.latency, collector.unfinished));
      else ctx.out.write(stamp + syscallText(shown, mode) + end);
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
