// rubyobjnew: Ruby allocations by class and by allocation site (path:line),
// with the length the probes give: bcc's uobjnew for Ruby, with sampling in
// BPF. probe.ts attaches src/bpf/rubyobjnew.bpf.c to the ruby's libruby;
// collect.ts reads the counts; views.ts prints them.
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
import { SKELETON } from '../../generated/rubyobjnew.js';
import { PATH_NOTE, PROBES, allocsRodata, attachAllocProbes, checkAllocProbes } from './probe.js';
import { AllocsCollector } from './collect.js';
import { allocsFigures, allocsRecord, allocsText, shownAllocs, type ViewMode } from './views.js';

export interface RubyobjnewOptions {
  allProcesses?: boolean;
  site?: boolean;
  process?: boolean;
  top?: number;
  all?: boolean;
  sample?: number;
  window?: number;
  every?: number;
  lib?: string;
}

const RUBYOBJNEW = (): FigureSchema => ({
  rows: { array: 'allocations', key: ['class', 'probe', 'site'], noun: 'class', counts: ['count', 'length'] },
});

export default defineTool<RubyobjnewOptions>({
  name: 'rubyobjnew',
  summary: 'Ruby allocations by class and allocation site (path:line): counts and lengths (USDT)',
  help: `Examples:
  rbtrace rubyobjnew -- ruby app.rb           top 10 classes allocated by a script
  rbtrace rubyobjnew --site -T 20 -p 1234     the 20 busiest allocation sites of a process
  rbtrace rubyobjnew --sample 100 -P          every ruby, 1 allocation in 100 looked at
  rbtrace rubyobjnew --window 10 -p 1234      probes live 10 ms of every second: ~1 % slower, not x100`,
  options(cmd: Command) {
    cmd
      .option('-s, --site', 'by allocation site (path:line of the Ruby code) as well as by class')
      .option('-P, --process', 'per process (pid) as well')
      .addOption(new Option('--sample <n>', 'look at each allocation with probability 1/N (in BPF); counts shown are estimates, N x those seen')
        .argParser(integerParser('--sample', { min: 1, max: 1000000, example: '100' })))
      .addOption(new Option('-T, --top <n>', 'print the top N rows (default 10)').argParser(integerParser('-T', { min: 1, max: 1000000, example: '20' })))
      .option('--all', 'print every row')
      .option('--lib <path|name>', 'the libruby (or static ruby) to probe, if not the target\'s')
      .option(...ALL_PROCESSES_OPTION);
    for (const o of windowOptions('counts are those seen in the windows, SHARE estimates the mix')) cmd.addOption(o);
  },
  kernels: { best: '5.15 usdt on every process (BPF cookies)', fallback: '5.10 usdt with -p only' },
  figures: RUBYOBJNEW,
  probe: () => {
    const binary = findRubyBinary({});
    checkAllocProbes(binary);
    // Without BPF cookies libbpf attaches only with a pid, and this process
    // maps no libruby: load the programs only (run() then needs -p).
    probeUserProbes(SKELETON, PROBES.map((p) => p.program), (o) => hasBpfCookie() && attachAllocProbes(o, binary, process.pid));
    return `usdt (${binary}: ruby:object__create, string__create, array__create, hash__create, symbol__create)${hasBpfCookie() ? '' : '; without -p: none (no BPF cookies: 5.15+)'}`;
  },
  run(ctx, opts) {
    if (opts.all && opts.top !== undefined) throw new UsageError('-T and --all cannot be used together', 'pick one');
    if (opts.window !== undefined && opts.sample !== undefined) {
      throw new UsageError('--window and --sample cannot be used together', 'pick one: --window saves the trap, --sample only the BPF work');
    }
    const windows = windowsFor(ctx.target, opts, PROBES.map((p) => ({ provider: RUBY_PROVIDER, name: p.name })));
    const mode: ViewMode = { byProcess: Boolean(opts.process), bySite: Boolean(opts.site), top: opts.all ? Infinity : opts.top ?? 10, sample: opts.sample ?? 1, windows: Boolean(windows) };
    const binary = rubyTargetBinary(ctx.target, opts.lib, PROBES.map((p) => p.name));
    const { obj } = loadUserProbes(ctx, {
      skeleton: SKELETON,
      pathName: 'usdt',
      note: PATH_NOTE,
      programs: PROBES.map((p) => p.program),
      rodata: allocsRodata(mode),
      // -p and -- CMD: semaphores raised in the target's processes only.
      attachPerProcess: !opts.allProcesses,
      attach: (o, p) => attachWindowed(windows, o, p, binary, () => attachAllocProbes(o, binary, p)),
    });
    // Owned after the object: the semaphores are put back before the probes go.
    windows?.start(ctx.session);
    const collector = new AllocsCollector(obj, mode.bySite);
    if (!opts.json && !ctx.target.following) {
      process.stderr.write(`Tracing Ruby allocations by class${mode.bySite ? ' and site' : ''}${mode.sample > 1 ? `, 1 in ${mode.sample}` : ''}... Ctrl-C to end.\n`);
    }

    scheduleReports(ctx.session, opts.interval, (periodic, when) => {
      const rows = collector.rows();
      const notes: string[] = [];
      if (mode.sample > 1) notes.push(`1 allocation in ${mode.sample} looked at, at random: counts and lengths shown are ${mode.sample} x those seen`);
      if (windows) notes.push(windowsNote(windows));
      const dropped = collector.dropped();
      if (dropped) notes.push(`${dropped} allocations not counted since the start: more distinct rows than the table holds (16384)`);
      if (rows.length === 0) notes.push('no allocation was seen in this interval');
      ctx.report(allocsFigures(rows));
      const { shown, omitted } = shownAllocs(rows, mode.top);
      if (opts.json) {
        ctx.out.record(allocsRecord(when, shown, omitted, mode, notes, rows, windows && windowsFigures(windows)));
        return;
      }
      const stamp = periodic ? `[${when.time.toTimeString().slice(0, 8)}]\n` : '';
      ctx.out.write(stamp + (rows.length ? allocsText(shown, mode, rows) : '') + notes.map((n) => `note: ${n}\n`).join('') + (periodic ? '\n' : ''));
    });
  },
});

