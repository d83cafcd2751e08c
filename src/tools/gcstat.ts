// gcstat: Ruby GC phases (mark, sweep) through libruby's USDT probes, with
// the process's RSS, per interval; log2 histograms of the phases at exit.
// BPF side: src/bpf/gcstat.bpf.c. RSS comes from /proc/PID/status (VmRSS,
// and VmHWM, the peak), read at each interval: exact and cheap, where the
// kmem:rss_stat tracepoint would fire on every page fault of every process.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { RbtraceError } from '../core/errors.js';
import { ElfFile } from '../core/elf/elf.js';
import { findLibrary, readComm } from '../core/linux/process.js';
import type { BinaryFile } from '../core/linux/procfiles.js';
import { findRubyBinary, loadUserProbes, probeUserProbes } from '../core/bpf/uprobes.js';
import { hasBpfCookie, PerProcessUsdt, PER_PROCESS_POLL_MS } from '../core/bpf/usdt-pids.js';
import { scalarLayout } from '../core/bpf/layout.js';
import { formatLog2Hist, log2HistToJson } from '../core/output/histogram.js';
import { formatBytes, term } from '../core/output/format.js';
import { ColumnPrinter } from '../core/output/table.js';
import { LiveChart } from '../core/output/chart.js';
import type { BpfObject } from '../core/bpf/object.js';
import { GCSTAT, gcstatDelta } from './common/figures.js';
import { gc_key_layout, gc_stat_layout, gc_hist_layout, ENUMS, SKELETON, type GcStat, type ProgramName } from '../generated/gcstat.js';

export interface GcstatOptions {
  chart?: boolean;
  lib?: string;
}

export const PROVIDER = 'ruby';
export const PROBES: { program: ProgramName; name: string }[] = [
  { program: 'gc_mark_begin', name: 'gc__mark__begin' },
  { program: 'gc_mark_end', name: 'gc__mark__end' },
  { program: 'gc_sweep_begin', name: 'gc__sweep__begin' },
  { program: 'gc_sweep_end', name: 'gc__sweep__end' },
];

export interface PhaseStats {
  count: number;
  total_ns: number;
  max_ns: number;
}

/** One row: a process during one interval, as --json prints it. */
export interface GcRow {
  time: string;
  pid: number;
  comm: string;
  mark: PhaseStats;
  sweep: PhaseStats;
  /** VmRSS from /proc/PID/status at the end of the interval (null: process gone). */
  rss_bytes: number | null;
  /** VmHWM: the peak RSS so far. */
  rss_peak_bytes: number | null;
}

/** VmRSS and VmHWM in bytes, from /proc/PID/status. */
export function readRss(pid: number): { rss: number; peak: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(text.match(new RegExp(`^${field}:\\s*(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
    const rss = kb('VmRSS');
    if (!Number.isFinite(rss)) return null; // a zombie, or a kernel thread
    return { rss, peak: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** The USDT GC probes must be in the binary's .note.stapsdt: else a one-line error saying how to get them. */
export function checkGcProbes(binary: string | BinaryFile): void {
  const notes = ElfFile.open(binary).sdtNotes();
  const have = new Set(notes.filter((n) => n.provider === PROVIDER).map((n) => n.name));
  const missing = PROBES.filter((p) => !have.has(p.name)).map((p) => p.name);
  if (missing.length) {
    throw new RbtraceError(`${binary} has no USDT probe ${PROVIDER}:${missing[0]}${notes.length === 0 ? ' (no .note.stapsdt at all)' : ''}: this Ruby was built without DTrace probes`,
      { hint: 'use a ruby built with ./configure --enable-dtrace (Debian and Ubuntu packages are)' });
  }
}

const emptyPhase = (): PhaseStats => ({ count: 0, total_ns: 0, max_ns: 0 });

export function drainStats(obj: BpfObject<typeof SKELETON>, comms: Map<number, string>): Map<number, { mark: PhaseStats; sweep: PhaseStats }> {
  const byPid = new Map<number, { mark: PhaseStats; sweep: PhaseStats }>();
  for (const [k, v] of obj.map('stats').typed(gc_key_layout, gc_stat_layout).drain()) {
    let e = byPid.get(k.pid);
    if (!e) byPid.set(k.pid, (e = { mark: emptyPhase(), sweep: emptyPhase() }));
    const s: GcStat = v;
    if (s.comm) comms.set(k.pid, s.comm);
    e[k.phase === ENUMS.GC_MARK ? 'mark' : 'sweep'] = { count: s.count, total_ns: s.total_ns, max_ns: s.max_ns };
  }
  return byPid;
}

const ms = (ns: number) => (ns / 1e6).toFixed(2);

export default defineTool<GcstatOptions>({
  name: 'gcstat',
  summary: 'Ruby GC mark/sweep latency (USDT) and process RSS over time',
  textOnly: ['chart'],
  help: `Examples:
  rbtrace gcstat -- ruby app.rb           GC of one script, every second
  rbtrace gcstat -p 1234 -i 5             a running ruby, every 5 s
  rbtrace gcstat                          every ruby on the system, one row per pid
  rbtrace gcstat -p 1234 --json           NDJSON rows
  rbtrace gcstat -p 1234 --no-chart       a table even on a terminal`,
  options(cmd: Command) {
    cmd
      .option('--chart', 'live chart of RSS and GC time (the default on a terminal)')
      .option('--no-chart', 'rows instead of the live chart')
      .option('--lib <path|name>', 'the libruby (or static ruby) to probe, if not the target\'s');
  },
  kernels: { best: '5.15 usdt on every process (BPF cookies)', fallback: '5.10 usdt per process' },
  figures: GCSTAT,
  probe: () => {
    const binary = findRubyBinary({});
    checkGcProbes(binary);
    // Without BPF cookies libbpf attaches only with a pid, and this process
    // maps no libruby: load the programs, and say how gcstat attaches.
    const global = hasBpfCookie();
    probeUserProbes(SKELETON, PROBES.map((p) => p.program), (o) => global &&
      PROBES.forEach((p) => o.program(p.program).attachUsdt({ binary, provider: PROVIDER, name: p.name, pid: process.pid })));
    return `usdt (${binary}: ${PROVIDER}:gc__{mark,sweep}__{begin,end})` +
      (global ? '' : `; without -p: per process (no BPF cookies: 5.15+), new rubies attached within ${PER_PROCESS_POLL_MS} ms`);
  },
  run(ctx, opts) {
    const intervalSec = ctx.opts.interval ?? 1;
    const binary = opts.lib !== undefined ? findLibrary(opts.lib, ctx.target.pid)
      : findRubyBinary({ pid: ctx.target.pid, command: ctx.target.command });
    checkGcProbes(binary);
    // -p: let the kernel filter by pid. -- CMD: not exec'd yet, so every
    // process mapping libruby, filtered in BPF to the command and its children.
    const pid = ctx.target.pid;
    // No pid to give and no BPF cookies (before 5.15): per process, below.
    const perProcess = pid === undefined && !hasBpfCookie();
    const attachTo = (o: BpfObject<typeof SKELETON>, p: number | undefined) =>
      PROBES.map((pr) => o.program(pr.program).attachUsdt({ binary, provider: PROVIDER, name: pr.name, pid: p }));
    const { obj } = loadUserProbes(ctx, {
      skeleton: SKELETON,
      pathName: 'usdt',
      note: 'USDT probes ruby:gc__{mark,sweep}__{begin,end} (uprobes with semaphores)',
      programs: PROBES.map((p) => p.program),
      attach: (o) => (perProcess ? [] : attachTo(o, pid)),
    });
    if (perProcess) {
      ctx.log.verbose(`no BPF cookies on this kernel (5.15+), so USDT in a shared library attaches per process: each ruby mapping ${binary} now, ` +
        `and new ones within ${PER_PROCESS_POLL_MS} ms of mapping it (GCs before that are not seen)`);
      const traced = ctx.target.following ? obj.map('rbtrace_traced').typed(scalarLayout('u32'), scalarLayout('u8')) : undefined;
      new PerProcessUsdt({
        binary: binary.path, // /proc/self/fd/N: its realpath is the path processes map
        attach: (p) => attachTo(obj, p),
        // -- CMD: the command and its descendants, as the fork tracker knows them.
        candidates: traced ? () => [...traced.entries()].map(([k]) => k.value) : undefined,
        log: (line) => ctx.log.verbose(line),
      }).start(ctx.session);
    }

    const chartMode = !ctx.out.json && (opts.chart ?? ctx.out.isTTY) && ctx.out.isTTY;
    const printer = new ColumnPrinter([
      { name: 'TIME', width: 8 }, { name: 'PID', width: 7, align: 'right' }, { name: 'COMM', width: 12 },
      { name: 'MARK#', width: 6, align: 'right' }, { name: 'MARK ms', width: 8, align: 'right' },
      { name: 'AVG', width: 8, align: 'right' }, { name: 'MAX', width: 8, align: 'right' },
      { name: 'SWEEP#', width: 6, align: 'right' }, { name: 'SWEEP ms', width: 8, align: 'right' },
      { name: 'AVG', width: 8, align: 'right' }, { name: 'MAX', width: 8, align: 'right' },
      { name: 'RSS', width: 10, align: 'right' },
    ]);
    const rssChart = new LiveChart({ title: 'RSS (MiB)', series: [{ name: 'rss', color: 'cyan' }], height: 8, color: ctx.color.level > 0 });
    const gcChart = new LiveChart({ title: `GC time per ${intervalSec} s interval (ms)`, series: [{ name: 'mark', color: 'green' }, { name: 'sweep', color: 'yellow' }], height: 8, color: ctx.color.level > 0 });
    let chartLines = 0;

    if (!ctx.out.json && !chartMode) {
      ctx.out.line(term`Tracing Ruby GC in ${binary.name}${pid ? ` (pid ${pid})` : ''}; RSS from /proc/PID/status. Every ${intervalSec} s; Ctrl-C to end.`);
      ctx.out.write(printer.header());
    }
    const comms = new Map<number, string>();

    const tick = () => {
      const now = new Date();
      const byPid = drainStats(obj, comms);
      const tgid = ctx.target.tgid;
      if (tgid !== undefined && !byPid.has(tgid)) byPid.set(tgid, { mark: emptyPhase(), sweep: emptyPhase() });
      const rows: GcRow[] = [];
      for (const [p, e] of [...byPid].sort((a, b) => a[0] - b[0])) {
        const rss = readRss(p);
        if (!comms.has(p) && rss) comms.set(p, readComm(p));
        if (!rss && e.mark.count === 0 && e.sweep.count === 0) continue; // target gone, nothing to say
        rows.push({ time: now.toISOString(), pid: p, comm: comms.get(p) ?? '?', ...e, rss_bytes: rss?.rss ?? null, rss_peak_bytes: rss?.peak ?? null });
      }
      ctx.report(gcstatDelta(rows));
      if (ctx.out.json) {
        for (const r of rows) ctx.out.record(r);
        return;
      }
      if (chartMode) {
        const sum = (f: (r: GcRow) => number) => rows.reduce((a, r) => a + f(r), 0);
        rssChart.push({ rss: sum((r) => r.rss_bytes ?? 0) / 1048576 });
        gcChart.push({ mark: sum((r) => r.mark.total_ns) / 1e6, sweep: sum((r) => r.sweep.total_ns) / 1e6 });
        const frame = rssChart.render() + '\n' + gcChart.render() +
          `${now.toTimeString().slice(0, 8)}  ${rows.length} process(es), ${sum((r) => r.mark.count)} marks, ${sum((r) => r.sweep.count)} sweeps this interval (RSS from /proc)\n`;
        ctx.out.write((chartLines ? `\x1b[${chartLines}A\r\x1b[0J` : '') + frame);
        chartLines = frame.split('\n').length - 1;
        return;
      }
      const t = now.toTimeString().slice(0, 8);
      for (const r of rows) {
        const avg = (s: PhaseStats) => (s.count ? ms(s.total_ns / s.count) : '-');
        ctx.out.write(printer.row([t, r.pid, r.comm, r.mark.count, ms(r.mark.total_ns), avg(r.mark), ms(r.mark.max_ns),
          r.sweep.count, ms(r.sweep.total_ns), avg(r.sweep), ms(r.sweep.max_ns), r.rss_bytes === null ? '-' : formatBytes(r.rss_bytes)]));
      }
    };

    // Our own clock: gcstat reports every second even without -i.
    const timer = setInterval(() => {
      try {
        tick();
      } catch (err) {
        ctx.session.fail(err);
      }
    }, intervalSec * 1000);
    ctx.session.own({ close: () => clearInterval(timer) });

    ctx.session.onFinish(() => {
      tick(); // the last, partial interval
      const hmap = obj.map('hists').typed(scalarLayout('u32'), gc_hist_layout);
      for (const [phase, k] of [['mark', ENUMS.GC_MARK], ['sweep', ENUMS.GC_SWEEP]] as const) {
        const slots = hmap.lookup({ value: k })?.slots ?? [];
        ctx.report({ phases: [{ phase, hist: slots }] });
        if (ctx.out.json) {
          ctx.out.record({ time: new Date().toISOString(), histogram: phase, unit: 'usecs', hist: log2HistToJson(slots) });
          continue;
        }
        const total = slots.reduce((a, b) => a + b, 0);
        ctx.out.line(`\n${ctx.color.bold(`GC ${phase}`)}: ${total} phases${total ? '' : ' (none seen)'}`);
        if (total) ctx.out.write(formatLog2Hist(slots, 'usecs'));
      }
    });
  },
});
