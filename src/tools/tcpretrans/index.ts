// tcpretrans: TCP retransmits as they happen (bcc's tcpretrans), with the
// connection's state and network namespace; -c counts per connection, -l
// adds tail-loss probes. src/bpf/tcpretrans.bpf.c (loaded by probe.ts)
// writes a record per event and counts per namespace; collect.ts reads
// them, views.ts prints them.
import type { Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { UsageError } from '../../core/errors.js';
import { TCPRETRANS } from '../common/figures.js';
import { SKELETON } from '../../generated/tcpretrans.js';
import { loadSpec, pathsFor } from './probe.js';
import { decodeEvent, readFlows, readNetns, tcpretransMaps } from './collect.js';
import { eventCells, eventPrinter, eventRecord, flowRecord, flowTable, netnsFigures } from './views.js';

export interface TcpretransOptions {
  count?: boolean;     // -c
  lossprobe?: boolean; // -l
  ipv4?: boolean;      // -4
  ipv6?: boolean;      // -6
}

export default defineTool<TcpretransOptions>({
  name: 'tcpretrans',
  summary: 'TCP retransmits (and tail-loss probes) with connection, state and network namespace',
  honours: ['duration'],
  whyNot: {
    pid: 'retransmits happen in timers and softirqs, where no process of the connection is running',
    command: 'retransmits happen in timers and softirqs, where no process of the connection is running',
    interval: 'it prints each retransmit as it happens, or with -c the counts at the end',
  },
  help: `Examples:
  rbtrace tcpretrans                 every TCP retransmit, any namespace
  rbtrace tcpretrans -l              and tail-loss probes
  rbtrace tcpretrans -c -d 60        counts per connection over a minute
  rbtrace tcpretrans --json | jq -c 'select(.rport == 443)'`,
  options(cmd: Command) {
    cmd
      .option('-c, --count', 'count retransmits per connection, print the counts at the end')
      .option('-l, --lossprobe', 'include tail-loss probes (needs fentry or kprobes on tcp_send_loss_probe)')
      .option('-4, --ipv4', 'only IPv4 connections')
      .option('-6, --ipv6', 'only IPv6 connections');
  },
  probe: () => probePaths(SKELETON, pathsFor(true)),
  kernels: { best: '5.10 tp_btf (-l: fentry, else kprobe)', fallback: '5.10 raw_tp, tracepoint' },
  paths: pathsFor(true),
  figures: TCPRETRANS,
  run(ctx, opts) {
    if (opts.ipv4 && opts.ipv6) throw new UsageError('-4 and -6 exclude each other', 'give one, or neither for both');
    // Like -p: the task running at a retransmit is whatever a timer or
    // softirq interrupted, so a cgroup filter would select nothing real.
    if (ctx.target.cgroup) throw new UsageError('--cgroup: retransmits happen in timers and softirqs, where no task of the connection is running', 'filter the records by address (--json | jq), or see tcplife --cgroup');
    const family = opts.ipv4 ? 'ipv4' : opts.ipv6 ? 'ipv6' : undefined;
    const tlp = Boolean(opts.lossprobe);
    const loaded = ctx.load(loadSpec({ events: !opts.count, flows: Boolean(opts.count), tlp }));
    if (tlp && loaded.has('fe_tlp')) {
      // Both attached: keep fentry's (cheaper), or each probe would count twice.
      loaded.link('kp_tlp')?.destroy();
    }
    if (tlp && !loaded.has('fe_tlp') && !loaded.has('kp_tlp')) ctx.log.warn('tail-loss probes are not traced (-l): the kernel refuses fentry and kprobes on tcp_send_loss_probe');
    const maps = tcpretransMaps(loaded.obj);
    const session = ctx.session;
    const wanted = (f: { family: string }) => family === undefined || f.family === family;

    if (!opts.count) {
      const printer = eventPrinter();
      if (!opts.json) ctx.out.write(printer.header());
      ctx.ringBuffer(loaded.obj, 'events', (view) => {
        const e = decodeEvent(view);
        if (!wanted(e)) return;
        const wall = new Date(session.wallTimeOf(e.ts_ns));
        if (opts.json) ctx.out.record(eventRecord(e, wall));
        else ctx.out.write(printer.row(eventCells(e, wall.toTimeString().slice(0, 8))));
      });
    } else if (!opts.json) {
      process.stderr.write('Tracing retransmits... Ctrl-C to end.\n');
    }

    session.onFinish(() => {
      // Per namespace, every family: the kernel's counts (the -4/-6 filters are of the lines).
      const namespaces = readNetns(maps);
      ctx.report(netnsFigures(namespaces));
      for (const n of namespaces) ctx.log.verbose(`netns ${n.netns}: ${n.retrans} retransmits (${n.segs} segments), ${n.synack} SYN-ACKs, ${n.failed} failed, ${n.tlp} tail-loss probes`);
      if (!opts.count) return;
      const rows = readFlows(maps).filter(wanted);
      if (opts.json) ctx.out.record(flowRecord(rows, new Date()));
      else ctx.out.write(flowTable(rows, tlp));
    });
  },
});
