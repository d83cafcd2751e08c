// gcstat: Ruby GC phases (mark, sweep) through libruby's USDT probes, with
// the process's RSS, per interval; log2 histograms of the phases at exit.
// probe.ts attaches src/bpf/gcstat.bpf.c's programs to the ruby's libruby,
// collect.ts drains the per-process stats and reads RSS, views.ts prints the
// table, the live charts or NDJSON.
import type { Command } from 'commander';
import { ALL_PROCESSES_OPTION } from '../../core/bpf/follow-uprobes.js';
import { defineTool } from '../../core/tool.js';
import { UsageError } from '../../core/errors.js';
import { findLibrary, readComm } from '../../core/linux/process.js';
import { findRubyBinary, loadUserProbes, probeUserProbes } from '../../core/bpf/uprobes.js';
import { hasBpfCookie, PerProcessUsdt, PER_PROCESS_POLL_MS } from '../../core/bpf/usdt-pids.js';
import { term } from '../../core/output/format.js';
import { GCSTAT, gcstatDelta } from '../common/figures.js';
import { SKELETON } from '../../generated/gcstat.js';
import { GcLayouts, PATH_NOTE, PROGRAMS, PROVIDER, attachGcProbes, checkGcProbes, missingGcProbes, stepsRodata } from './probe.js';
import { runFromVmCounters } from './vm-mode.js';
import { decodeStep, drainStats, emptyPhase, phaseHist, readRss } from './collect.js';
import { CollectionModel, collectionKind, type Collection } from './collections.js';
import { rubyGcLayout } from './layout.js';
import {
  GcCharts, collectionPrinter, collectionRecord, collectionText, gcPrinter, gcRowsText, histRecord, histText, type GcRow,
} from './views.js';

export interface GcstatOptions {
  allProcesses?: boolean;
  chart?: boolean;
  lib?: string;
  log?: boolean;
}

/** Per process, the collections begun since the last row. */
interface Begun { collections: number; major: number; minor: number; known: boolean }

export default defineTool<GcstatOptions>({
  name: 'gcstat',
  summary: 'Ruby GC mark/sweep latency (USDT) and process RSS over time',
  textOnly: ['chart'],
  help: `Examples:
  rbtrace gcstat -- ruby app.rb           GC of one script, every second
  rbtrace gcstat -p 1234 -i 5             a running ruby, every 5 s
  rbtrace gcstat                          every ruby on the system, one row per pid
  rbtrace gcstat -p 1234 --json           NDJSON rows
  rbtrace gcstat -p 1234 --no-chart       a table even on a terminal
  rbtrace gcstat --log -- ruby app.rb     one line per collection: major/minor, why, its pauses`,
  options(cmd: Command) {
    cmd
      .option('--chart', 'live chart of RSS and GC time (the default on a terminal)')
      .option('--no-chart', 'rows instead of the live chart')
      .option('--log', 'one line per collection (major or minor, why, its mark and sweep steps) instead of rows per interval')
      .option('--lib <path|name>', 'the libruby (or static ruby) to probe, if not the target\'s')
      .option(...ALL_PROCESSES_OPTION);
  },
  kernels: { best: '5.15 usdt on every process (BPF cookies)', fallback: '5.10 usdt per process' },
  figures: GCSTAT,
  probe: () => {
    const binary = findRubyBinary({});
    checkGcProbes(binary);
    // Without BPF cookies libbpf attaches only with a pid, and this process
    // maps no libruby: load the programs, and say how gcstat attaches.
    const global = hasBpfCookie();
    probeUserProbes(SKELETON, PROGRAMS, (o) => global && attachGcProbes(o, binary, process.pid));
    return `usdt (${binary}: ${PROVIDER}:gc__{mark,sweep}__{begin,end})` +
      (global ? '' : `; without -p: per process (no BPF cookies: 5.15+), new rubies attached within ${PER_PROCESS_POLL_MS} ms`);
  },
  run(ctx, opts) {
    // An option the tool cannot honour is refused, never dropped: the live
    // chart redraws a terminal, and the report's stream is not one.
    if (opts.chart === true && !ctx.out.isTTY && !ctx.out.json && !opts.log) {
      throw new UsageError(`--chart draws on a terminal, and ${ctx.out.name} is not one`, 'drop --chart (a table is printed), or run it in a terminal');
    }
    const intervalSec = ctx.opts.interval ?? 1;
    const binary = opts.lib !== undefined ? findLibrary(opts.lib, ctx.target.pid)
      : findRubyBinary({ pid: ctx.target.pid, command: ctx.target.command });
    const found = rubyGcLayout(binary);
    // A ruby built without DTrace probes: its VM's own counters instead.
    const noProbes = missingGcProbes(binary);
    if (noProbes) return runFromVmCounters(ctx, opts, binary, noProbes, found);
    // -p: let the kernel filter by pid. -- CMD: not exec'd yet, so every
    // process mapping libruby, filtered in BPF to the command and its children.
    const pid = ctx.target.pid;
    // No pid to give and no BPF cookies (before 5.15): per process, below.
    const perProcess = pid === undefined && !hasBpfCookie();
    const layout = 'layout' in found ? found.layout : undefined;
    if (layout) ctx.log.verbose(`Ruby ${layout.version}: collections numbered and explained from the VM (vm->objspace at +0x${layout.vmObjspace.toString(16)}, profile.count at +0x${layout.count.toString(16)})`);
    else ctx.log.warn(`major/minor and the reason of each GC are not shown: ${'why' in found ? found.why : ''}`);
    // The probes' USDT cookie: where in `layouts` their Ruby's layout is.
    let cookie: number | undefined;
    const { obj } = loadUserProbes(ctx, {
      skeleton: SKELETON,
      rodata: stepsRodata(),
      pathName: 'usdt',
      note: PATH_NOTE,
      programs: PROGRAMS,
      // -p and -- CMD: in the target's processes only (loadUserProbes).
      attachPerProcess: !perProcess && !opts.allProcesses,
      attach: (o, p) => {
        cookie ??= new GcLayouts(o).cookie(binary.name, layout);
        return perProcess ? [] : attachGcProbes(o, binary, p, cookie);
      },
    });
    if (perProcess) {
      ctx.log.verbose(`no BPF cookies on this kernel (5.15+), so USDT in a shared library attaches per process: each ruby mapping ${binary} now, ` +
        `and new ones within ${PER_PROCESS_POLL_MS} ms of mapping it (GCs before that are not seen)`);
      const traced = ctx.target.following ? obj.typedMap('rbtrace_traced') : undefined;
      new PerProcessUsdt({
        binary: binary.path, // /proc/self/fd/N: its realpath is the path processes map
        attach: (p) => attachGcProbes(obj, binary, p, cookie ?? 0),
        // -- CMD: the command and its descendants, as the fork tracker knows them.
        candidates: traced ? () => traced.entries().map(([k]) => k.value) : undefined,
        log: (line) => ctx.log.verbose(line),
      }).start(ctx.session);
    }

    const model = new CollectionModel();
    const begun = new Map<number, Begun>();
    const logPrinter = collectionPrinter();
    const logCollection = (c: Collection | undefined) => {
      if (!c || !opts.log) return;
      if (ctx.out.json) ctx.out.record(collectionRecord(c));
      else ctx.out.write(collectionText(logPrinter, c));
    };
    ctx.ringBuffer(obj, 'steps', (rec) => {
      const { done, begun: c } = model.add(decodeStep(rec));
      logCollection(done);
      if (!c) return;
      let b = begun.get(c.pid);
      if (!b) begun.set(c.pid, (b = { collections: 0, major: 0, minor: 0, known: true }));
      b.collections++;
      const kind = collectionKind(c);
      if (kind === 'unknown') b.known = false;
      else b[kind]++;
    });

    const chartMode = !opts.log && !ctx.out.json && (opts.chart ?? ctx.out.isTTY) && ctx.out.isTTY;
    const printer = gcPrinter();
    const charts = new GcCharts(intervalSec, ctx.color.level > 0);

    if (!ctx.out.json && !chartMode) {
      ctx.out.line(term`Tracing Ruby GC in ${binary.name}${pid ? ` (pid ${pid})` : ''}; ${opts.log ? 'one line per collection, when the next begins (or at the end)' : `RSS from /proc/PID/status. Every ${intervalSec} s`}; Ctrl-C to end.`);
      ctx.out.write(opts.log ? logPrinter.header() : printer.header());
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
        const b = begun.get(p);
        begun.delete(p);
        const collections = b?.collections ?? 0;
        rows.push({ time: now.toISOString(), pid: p, comm: comms.get(p) ?? '?', ...e, collections,
          major: b && !b.known ? null : b?.major ?? 0, minor: b && !b.known ? null : b?.minor ?? 0, rss_bytes: rss?.rss ?? null, rss_peak_bytes: rss?.peak ?? null });
      }
      ctx.report(gcstatDelta(rows));
      if (opts.log) {
        // A process gone has no more steps to come: its last collection is done.
        for (const c of model.flush((p) => readRss(p) !== null)) logCollection(c);
        return;
      }
      const time = now.toTimeString().slice(0, 8);
      if (ctx.out.json) for (const r of rows) ctx.out.record(r);
      else if (chartMode) ctx.out.write(charts.frame(time, rows));
      else ctx.out.write(gcRowsText(printer, time, rows));
    };

    // Every second even without -i.
    ctx.session.onInterval(tick, 1);

    ctx.session.onFinish(() => {
      tick(); // the last, partial interval
      // -p of a process without Ruby is refused at the start; a command can
      // only be judged at its end (it may exec ruby late, or never collect).
      if (ctx.target.command && comms.size === 0) {
        ctx.log.warn('no Ruby GC seen: the command ran no Ruby (no process of it mapped libruby and collected), or its Ruby never collected');
      }
      for (const c of model.flush()) logCollection(c);
      if (opts.log) return;
      for (const phase of ['mark', 'sweep'] as const) {
        const slots = phaseHist(obj, phase);
        ctx.report({ phases: [{ phase, hist: slots }] });
        if (ctx.out.json) ctx.out.record(histRecord(phase, slots));
        else ctx.out.write(histText(ctx.color.bold(`GC ${phase}`), slots));
      }
    });
  },
});

