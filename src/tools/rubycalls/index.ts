// rubycalls: calls per Ruby method (Class#method), methods written in Ruby
// and in C, with -L their latency: bcc's ucalls for Ruby, saying when Ruby
// methods cannot be seen. probe.ts attaches src/bpf/rubycalls.bpf.c to the
// ruby's libruby; collect.ts reads the counts; vmflags.ts reads the VM's
// event flags from the process; views.ts prints them.
import { Option, type Command } from 'commander';
import { ALL_PROCESSES_OPTION } from '../../core/bpf/follow-uprobes.js';
import { defineTool } from '../../core/tool.js';
import { UsageError } from '../../core/errors.js';
import { integerParser } from '../../core/parsers.js';
import { scheduleReports } from '../../core/reports.js';
import { rubyTargetBinary } from '../../core/linux/ruby.js';
import { findRubyBinary, loadUserProbes, probeUserProbes } from '../../core/bpf/uprobes.js';
import { hasBpfCookie } from '../../core/bpf/usdt-pids.js';
import { attachWindowed, windowOptions, windowsFigures, windowsFor, windowsNote } from '../../core/bpf/usdt-windows.js';
import { RUBY_PROVIDER } from '../../core/linux/ruby.js';
import type { FigureSchema } from '../../core/report/figures.js';
import { SKELETON } from '../../generated/rubycalls.js';
import { PATH_NOTE, attachCallProbes, callsRodata, checkCallProbes, probesFor, sizeMaps } from './probe.js';
import { CallsCollector } from './collect.js';
import { VmFlagsReader, type VmEventFlags } from './vmflags.js';
import { callsFigures, callsRecord, callsText, rubyProbesNote, shownCalls, type ViewMode } from './views.js';

export interface RubycallsOptions {
  allProcesses?: boolean;
  latency?: boolean;
  process?: boolean;
  top?: number;
  all?: boolean;
  lib?: string;
  window?: number;
  every?: number;
}

const RUBYCALLS = (): FigureSchema => ({
  rows: { array: 'methods', key: ['method', 'kind'], noun: 'method', counts: ['count'], durations: ['total_ns'], histograms: { hist: { unit: 'ns' } } },
});

/** How often the target's event flags are read (the last reading is kept past its exit). */
const FLAGS_POLL_MS = 100;

export default defineTool<RubycallsOptions>({
  name: 'rubycalls',
  summary: 'Ruby method calls (Ruby and C methods) per Class#method: counts, latency (USDT)',
  help: `Examples:
  rbtrace rubycalls -- ruby app.rb        top 10 methods of a script, at its end
  rbtrace rubycalls -L -p 1234 -i 5       with time per method, every 5 s
  rbtrace rubycalls -P                    every ruby on the system, per process
  rbtrace rubycalls --all --json -- ruby -S gem list
  rbtrace rubycalls --window 10 -p 1234   probes live 10 ms of every second: the busy process barely slows`,
  options(cmd: Command) {
    cmd
      .option('-L, --latency', 'also time in each method (entry to return) and a log2 histogram per shown method')
      .option('-P, --process', 'per process (pid) as well as per method')
      .addOption(new Option('-T, --top <n>', 'print the top N methods (default 10)').argParser(integerParser('-T', { min: 1, max: 1000000, example: '20' })))
      .option('--all', 'print every method')
      .option('--lib <path|name>', 'the libruby (or static ruby) to probe, if not the target\'s')
      .option(...ALL_PROCESSES_OPTION);
    for (const o of windowOptions('counts are those seen in the windows, SHARE estimates the mix of calls; not with -L')) cmd.addOption(o);
  },
  kernels: { best: '5.15 usdt on every process (BPF cookies)', fallback: '5.10 usdt with -p only' },
  figures: RUBYCALLS,
  probe: () => {
    const binary = findRubyBinary({});
    checkCallProbes(binary);
    // Without BPF cookies libbpf attaches only with a pid, and this process
    // maps no libruby: load the programs only (run() then needs -p).
    probeUserProbes(SKELETON, probesFor(true).map((p) => p.program), (o) => hasBpfCookie() && attachCallProbes(o, binary, true, process.pid));
    return `usdt (${binary}: ruby:method__entry/return, ruby:cmethod__entry/return)${hasBpfCookie() ? '' : '; without -p: none (no BPF cookies: 5.15+)'}`;
  },
  run(ctx, opts) {
    if (opts.all && opts.top !== undefined) throw new UsageError('-T and --all cannot be used together', 'pick one');
    if (opts.window !== undefined && opts.latency) {
      throw new UsageError('--window and -L cannot be used together', 'a call that returns after its window closes is not seen returning: drop -L, or --window');
    }
    const windows = windowsFor(ctx.target, opts, probesFor(false).map((p) => ({ provider: RUBY_PROVIDER, name: p.name })));
    const mode: ViewMode = { byProcess: Boolean(opts.process), latency: Boolean(opts.latency), top: opts.all ? Infinity : opts.top ?? 10, windows: Boolean(windows) };
    const binary = rubyTargetBinary(ctx.target, opts.lib, probesFor(true).map((p) => p.name));
    const { obj } = loadUserProbes(ctx, {
      skeleton: SKELETON,
      pathName: 'usdt',
      note: PATH_NOTE,
      programs: probesFor(mode.latency).map((p) => p.program),
      rodata: callsRodata(mode),
      configure: (o) => sizeMaps(o, mode.latency),
      // -p and -- CMD: semaphores raised in the target's processes only.
      attachPerProcess: !opts.allProcesses,
      attach: (o, p) => attachWindowed(windows, o, p, binary, () => attachCallProbes(o, binary, mode.latency, p)),
    });
    // Owned after the object: the semaphores are put back before the probes go.
    windows?.start(ctx.session);
    const collector = new CallsCollector(obj);
    const vm = new VmFlagsReader(binary);
    const flags = new Map<number, VmEventFlags>();
    const readFlags = (p: number) => {
      const f = vm.read(p);
      if (f) flags.set(p, f);
    };
    const poll = setInterval(() => {
      if (ctx.target.tgid !== undefined) readFlags(ctx.target.tgid);
    }, FLAGS_POLL_MS);
    ctx.session.own({ close: () => clearInterval(poll) });
    if (!opts.json && !ctx.target.following) {
      process.stderr.write(`Tracing Ruby method calls${mode.latency ? ' and their time' : ''}${mode.byProcess ? ' per process' : ''}... Ctrl-C to end.\n`);
    }

    scheduleReports(ctx.session, opts.interval, (periodic, when) => {
      const rows = collector.rows();
      const pids = new Set<number>(ctx.target.tgid !== undefined ? [ctx.target.tgid] : []);
      if (mode.byProcess) for (const r of rows) if (r.pid) pids.add(r.pid);
      const notes: string[] = [];
      for (const p of pids) {
        readFlags(p);
        const sawRuby = rows.some((r) => r.kind === 'ruby' && (r.pid === undefined || r.pid === p));
        const note = rubyProbesNote(p, flags.get(p), sawRuby);
        if (note) notes.push(note);
      }
      if (pids.size === 0 && !rows.some((r) => r.kind === 'ruby')) {
        notes.push('no method written in Ruby was seen: ruby:method__entry fires only in processes with a TracePoint for :call/:return enabled (Ruby bug #14582); -P or -p tells which');
      }
      if (mode.latency && rows.some((r) => r.kind === 'ruby' && r.count > 0 && r.timed === 0)) {
        notes.push('methods written in Ruby are counted but not timed: ruby:method__return fires only while a TracePoint for :return is enabled (one for :call alone is not enough)');
      }
      const dropped = collector.dropped();
      if (dropped) notes.push(`${dropped} calls not counted since the start: more distinct methods than the table holds (16384)`);
      if (windows) notes.push(windowsNote(windows));
      if (rows.length === 0) notes.push('no method call was seen in this interval');
      ctx.report(callsFigures(rows, mode.latency));
      const { shown, omitted } = shownCalls(rows, mode);
      if (opts.json) {
        ctx.out.record(callsRecord(when, shown, omitted, mode, notes, rows, windows && windowsFigures(windows)));
        return;
      }
      const stamp = periodic ? `[${when.time.toTimeString().slice(0, 8)}]\n` : '';
      ctx.out.write(stamp + (rows.length ? callsText(shown, mode, rows) : '') + notes.map((n) => `note: ${n}\n`).join('') + (periodic ? '\n' : ''));
    });
  },
});
