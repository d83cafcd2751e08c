// runqlat: run-queue (scheduler) latency histograms (bcc's runqlat): how
// long runnable tasks wait for a CPU, for the whole system, per process
// (-P), per thread (-L) or per cgroup (--per-cgroup), and with --max the
// worst waits with the task that waited and the one that had the CPU. The
// kernel side (src/bpf/runqlat.bpf.c, loaded by probe.ts) times each wait
// from the sched tracepoints; collect.ts reads it, views.ts prints it.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { integerParser } from '../../core/parsers.js';
import { UsageError } from '../../core/errors.js';
import { RUNQLAT } from '../common/figures.js';
import { DEFINES, SKELETON } from '../../generated/runqlat.js';
import { loadSpec, PATHS, type Split } from './probe.js';
import { RunqlatCollector } from './collect.js';
import { figures, histText, record, worstText } from './views.js';

export interface RunqlatOptions {
  milliseconds?: boolean; // -m
  pids?: boolean;         // -P
  tids?: boolean;         // -L
  perCgroup?: boolean;    // --per-cgroup
  max?: number;           // --max N
}

export default defineTool<RunqlatOptions>({
  name: 'runqlat',
  summary: 'run-queue (scheduler) latency histograms, per process or cgroup, and the worst waits',
  help: `Examples:
  rbtrace runqlat                      one histogram of every task's run-queue wait (us), at Ctrl-C
  rbtrace runqlat -P -i 5              per process, every 5 seconds
  rbtrace runqlat --per-cgroup -m      per cgroup, in ms
  rbtrace runqlat --max 10 -d 10       the 10 worst waits, with who had the CPU
  rbtrace runqlat --cgroup /system.slice/nginx.service -P`,
  options(cmd: Command) {
    cmd
      .option('-m, --milliseconds', 'histograms in milliseconds (default: microseconds)')
      .option('-P, --pids', 'a histogram per process')
      .option('-L, --tids', 'a histogram per thread')
      .option('--per-cgroup', 'a histogram per cgroup v2 (the waiting task\'s)')
      .addOption(new Option('--max <n>', `also list the N worst waits, with the waiting and the running task (1 to ${DEFINES.RQ_WORST} per CPU)`)
        .argParser(integerParser('--max', { min: 1, max: 1024, example: '10' })));
  },
  probe: () => probePaths(SKELETON, PATHS),
  kernels: { best: '5.5 tp_btf (sched_wakeup, sched_switch)', fallback: '5.10 raw_tp' },
  paths: PATHS,
  figures: (opts) => RUNQLAT({ milliseconds: opts.milliseconds }),
  run(ctx, opts) {
    const splits = [opts.pids && '-P', opts.tids && '-L', opts.perCgroup && '--per-cgroup'].filter(Boolean);
    if (splits.length > 1) throw new UsageError(`${splits.join(' and ')} cannot be used together`, 'pick one way to split the histograms');
    const split: Split = opts.pids ? 'process' : opts.tids ? 'thread' : opts.perCgroup ? 'cgroup' : 'all';
    const mode = { split, ms: Boolean(opts.milliseconds), worst: opts.max !== undefined, cgroup: ctx.target.cgroup };
    const loaded = ctx.load(loadSpec(mode));
    const collector = new RunqlatCollector(loaded.obj, split);
    if (!opts.json && !ctx.target.following) process.stderr.write('Tracing run queue latency... Hit Ctrl-C to end.\n');

    let lastReport = Date.now();
    const report = (periodic: boolean) => {
      const now = Date.now();
      const when = { time: new Date(now), intervalS: (now - lastReport) / 1000 };
      lastReport = now;
      const rows = collector.rows();
      const waits = opts.max !== undefined ? collector.worstWaits(opts.max) : undefined;
      ctx.report(figures(rows));
      if (opts.json) ctx.out.record(record(when, rows, waits, mode));
      else ctx.out.write((periodic ? `\n[${when.time.toTimeString().slice(0, 8)}]` : '') + histText(rows, mode) + worstText(waits ?? []));
    };
    ctx.session.onInterval(() => report(true));
    ctx.session.onFinish((reason) => {
      if (opts.interval !== undefined && reason === 'duration' && Date.now() - lastReport < 250) return;
      report(false);
    });
  },
});
