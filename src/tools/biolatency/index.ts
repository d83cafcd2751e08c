// biolatency: block I/O latency histograms (bcc's biolatency), per disk (-D)
// and operation (-F), device or queued+device time (-Q), in us or ms (-m);
// with --events one line per request instead (bcc's biosnoop). The kernel
// side (src/bpf/biolatency.bpf.c, loaded by probe.ts) times each request
// from the block layer's tracepoints; collect.ts reads the histograms or the
// records, views.ts prints them.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { blockDevByName } from '../../core/linux/blockdev.js';
import { UsageError } from '../../core/errors.js';
import { BIOLATENCY } from '../common/figures.js';
import { SKELETON } from '../../generated/biolatency.js';
import { loadSpec, pathsFor, type ProbeMode } from './probe.js';
import { BiolatencyCollector, type BioEventRow } from './collect.js';
import { eventFigures, eventHeader, eventLine, eventRecord, histFigures, histRecord, histText } from './views.js';

export interface BiolatencyOptions {
  milliseconds?: boolean; // -m
  disks?: boolean;        // -D
  flags?: boolean;        // -F
  queued?: boolean;       // -Q
  events?: boolean;       // --events
  disk?: number;          // --disk
}

export default defineTool<BiolatencyOptions>({
  name: 'biolatency',
  summary: 'block I/O latency histograms per disk and operation; --events: one line per I/O (biosnoop)',
  help: `Examples:
  rbtrace biolatency                   one histogram of every disk's I/O latency (us), at Ctrl-C
  rbtrace biolatency -D -F -i 1        per disk and operation, every second
  rbtrace biolatency -Q -m --disk vda  including time queued in the OS, in ms, one disk
  rbtrace biolatency --events          one line per I/O, as bcc's biosnoop
  rbtrace biolatency --events -Q -- dd if=/dev/vda of=/dev/null bs=4k count=100 iflag=direct`,
  textOnly: [],
  options(cmd: Command) {
    cmd
      .option('-m, --milliseconds', 'histograms in milliseconds (default: microseconds)')
      .option('-D, --disks', 'a histogram per disk')
      .option('-F, --flags', 'a histogram per operation (read, write, flush, discard, ...)')
      .option('-Q, --queued', 'include the time requests wait in the OS queue (from insert, not issue)')
      .option('--events', 'one line per completed I/O (bcc biosnoop): time, comm, pid, disk, op, sector, bytes, latency')
      .addOption(new Option('--disk <name>', 'only this disk (a name in /sys/block, e.g. vda)').argParser((t) => blockDevByName(t)));
  },
  probe: () => probePaths(SKELETON, pathsFor(true)),
  kernels: { best: '5.5 tp_btf (block_rq_insert/issue/complete)', fallback: '5.10 raw_tp' },
  figures: (opts) => BIOLATENCY({ milliseconds: opts.milliseconds }),
  run(ctx, opts) {
    if (opts.events && (opts.disks || opts.flags)) throw new UsageError('-D and -F split histograms: --events prints every I/O with its disk and operation already', 'drop -D/-F, or --events');
    if (opts.events && opts.interval !== undefined) throw new UsageError('-i does not apply with --events: each I/O is printed as it completes', 'drop -i');
    const mode: ProbeMode = {
      perDisk: Boolean(opts.disks), perOp: Boolean(opts.flags), queued: Boolean(opts.queued),
      ms: Boolean(opts.milliseconds), events: Boolean(opts.events), dev: opts.disk,
    };
    const loaded = ctx.load(loadSpec(mode));
    const collector = new BiolatencyCollector(loaded.obj, mode);
    const view = { ms: mode.ms, queued: mode.queued };

    if (mode.events) {
      let t0: number | undefined;
      const batch: BioEventRow[] = [];
      if (!opts.json) ctx.out.write(eventHeader(mode.queued));
      ctx.ringBuffer(loaded.obj, 'events', (rec) => {
        const e = collector.event(rec);
        t0 ??= e.ts_ns;
        batch.push(e);
        if (opts.json) ctx.out.record(eventRecord(e));
        else ctx.out.write(eventLine(e, t0, mode.queued));
      });
      ctx.session.onFinish(() => {
        ctx.report(eventFigures(batch.splice(0), mode.ms));
        ctx.log.verbose(`${collector.untracked()} completions of requests already in flight at attach (not shown)`);
      });
      return;
    }

    if (!opts.json && !ctx.target.following) {
      process.stderr.write(`Tracing block device I/O${mode.queued ? ' (queued + device time)' : ''}... Hit Ctrl-C to end.\n`);
    }
    let lastReport = Date.now();
    const report = (periodic: boolean) => {
      const now = Date.now();
      const when = { time: new Date(now), intervalS: (now - lastReport) / 1000 };
      lastReport = now;
      const rows = collector.rows();
      ctx.report(histFigures(rows));
      if (opts.json) ctx.out.record(histRecord(when, rows, view, collector.untracked()));
      else ctx.out.write((periodic ? `\n[${when.time.toTimeString().slice(0, 8)}]` : '') + histText(rows, view));
    };
    ctx.session.onInterval(() => report(true));
    ctx.session.onFinish((reason) => {
      if (opts.interval !== undefined && reason === 'duration' && Date.now() - lastReport < 250) return;
      report(false);
    });
  },
});
