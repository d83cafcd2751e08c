// synqueue: SYN and accept queue fill of every TCP listener, in every network
// namespace, live.
//
// Each interval: a snapshot of every listener (queue lengths and limits now,
// the kernel's per-socket drop counter) from BPF iterators, plus what the
// probes of src/bpf/synqueue.bpf.c counted per listener since the last
// report (the longest queues seen, overflows, drops, SYN cookies, SYN-ACK
// retransmits), plus each namespace's TcpExt deltas. probe.ts loads it;
// collect.ts makes each report (listener-table.ts keeps the listeners,
// model.ts does the arithmetic of a row); views.ts prints it. See man
// rbtrace-synqueue.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { RbtraceError, UsageError } from '../../core/errors.js';
import { resolveNetnsArg, type Netns } from '../../core/linux/netns.js';
import { releaseFreedMemory } from '../../core/linux/memory.js';
import { parsePorts } from './model.js';
import { SynqueueCollector } from './collect.js';
import { descendants, kfreeSkbHasRxSk } from './proc.js';
import { makeView, printHist } from './views.js';
import { SKELETON } from '../../generated/synqueue.js';
import { SynqueueDemo } from './demo.js';
import { ATTACH_PATHS, loadSpec, sightOf, walkLinks } from './probe.js';
import { SYNQUEUE } from '../common/figures.js';

export interface SynqueueOptions {
  port?: number[];
  ipv4?: boolean;
  ipv6?: boolean;
  chart?: boolean;
  table?: boolean;
  hist?: boolean;
  events?: boolean;
  demo?: boolean;
  netns?: Netns[];
  all?: boolean;
}

function collectNetns(text: string, prev: Netns[] = []): Netns[] {
  const ns = resolveNetnsArg(text);
  return prev.some((p) => p.inode === ns.inode) ? prev : [...prev, ns];
}

// ---- the tool -----------------------------------------------------------------

export default defineTool<SynqueueOptions>({
  name: 'synqueue',
  summary: 'TCP SYN and accept queue fill per listener, overflows and drops, live',
  help: `Examples:
  rbtrace synqueue                     every listener of every network namespace, a table each second
  rbtrace synqueue --netns blue        only the listeners of ip netns blue
  rbtrace synqueue --port 8080 --chart  one listener's queues as a live chart
  rbtrace synqueue --events            one line per overflow or drop
  rbtrace synqueue --hist -d 30        accept queue length at each enqueue, on exit
  rbtrace synqueue --json | jq '.listeners[] | select(.overflows > 0)'
  rbtrace synqueue --demo              watch a small accept queue overflow while a large one holds`,
  options(cmd: Command) {
    cmd
      .option('--port <ports>', 'only listeners on these local ports (comma-separated)', parsePorts)
      .option('-4, --ipv4', 'only IPv4 listeners')
      .option('-6, --ipv6', 'only IPv6 listeners')
      .option('--chart', 'live chart of queue fill per listener (default on a terminal when one listener is selected)')
      .option('--table', 'the per-interval table, even where --chart would be the default')
      .option('--hist', 'on exit, a histogram of the accept queue length at each enqueue, per listener and limit')
      .option('--events', 'one line per overflow or drop instead of the table')
      .option('--netns <path|inode>', 'only this network namespace (/run/netns/NAME, NAME, /proc/PID/ns/net or an inode; repeatable); default: every one', collectNetns)
      .option('--all', 'the table (or chart) shows every listener, not only as many as fit the terminal')
      .addOption(new Option('--demo', 'run two slow local servers (backlog 500 and 4096) and a load generator, and watch them'));
  },
  kernels: { best: '5.10 fentry', fallback: '5.10 kprobe, tp_btf, tracepoint (per-enqueue on tp: sk_data_ready 6.2+)' },
  figures: SYNQUEUE,
  paths: ATTACH_PATHS,
  probe: () => probePaths(SKELETON, ATTACH_PATHS),
  run(ctx, opts) {
    if (opts.ipv4 && opts.ipv6) throw new UsageError('-4 and -6 exclude each other', 'give one, or neither for both');
    if (opts.chart && opts.table) throw new UsageError('--chart and --table exclude each other');
    if (opts.chart && opts.json) throw new UsageError('--chart draws on a terminal; --json writes records', 'pick one');
    if (opts.events && (opts.chart || opts.table)) throw new UsageError('--events replaces the table and chart views', 'drop --chart/--table');
    if (opts.demo && (opts.port || opts.pid !== undefined || opts.command.length)) {
      throw new UsageError('--demo picks its own listeners', 'drop --port, -p and -- CMD');
    }
    if (opts.interval !== undefined && opts.interval <= 0) throw new UsageError('-i must be more than 0 seconds');
    const intervalSec = opts.interval ?? 1;

    let demo: SynqueueDemo | undefined;
    let ports = opts.port ? new Set(opts.port) : undefined;
    if (opts.demo) {
      try {
        demo = new SynqueueDemo();
      } catch (err) {
        throw new UsageError(`--demo cannot open its loopback listeners: ${(err as Error).message}`);
      }
      ctx.session.own(demo);
      ports = new Set(demo.ports);
    }

    const loaded = ctx.load(loadSpec({ events: opts.events, hist: opts.hist }));
    const sight = sightOf(loaded);
    if (!sight.seesEnqueues) {
      // A tracepoint path on a kernel without sock:sk_data_ready (before 6.2).
      if (opts.hist) {
        throw new RbtraceError(`--hist needs to see each connection join an accept queue, which attach path ${loaded.path.name} cannot on this kernel (no sock:sk_data_ready tracepoint)`,
          { hint: 'use the fentry or kprobe path (unset RBTRACE_ATTACH / --attach), or a 6.2+ kernel' });
      }
      ctx.log.verbose('no sock:sk_data_ready tracepoint on this kernel: accept queue max = the most the per-interval snapshots saw, ' +
        'enqueued = null, overflows inferred from sk_drops; exact: queue lengths now, limits, SYN queue, drops, SYN-ACK retransmits');
    }
    if (!kfreeSkbHasRxSk()) {
      ctx.log.verbose('skb:kfree_skb has no rx_sk on this kernel (before 6.11): packets a listener discards are not told apart, ' +
        'so drops = all of its sk_drops (also e.g. retransmitted SYNs of connections still in its SYN queue)');
    }

    // Which pids a listener must belong to (-p, -- CMD and its descendants).
    const wantedPids = (): Set<number> | undefined => {
      const root = ctx.target.tgid;
      if (root === undefined) return undefined;
      const set = new Set([root]);
      if (ctx.target.following) for (const p of descendants(root)) set.add(p);
      return set;
    };

    // --cgroup: a listener is kept when its owner is in the directory or
    // below. Here, unlike the per-task tools, this is decided in user space:
    // the probes run in softirq context (the current task is whoever the
    // packet interrupted) and a listener is a socket, not a task.
    const collector = new SynqueueCollector(loaded.obj, walkLinks(loaded), sight, {
      netns: opts.netns, ports, family: opts.ipv4 ? 'ipv4' : opts.ipv6 ? 'ipv6' : undefined,
      wantedPids, cgroup: ctx.target.cgroup?.relative, labels: Boolean(opts.hist || opts.events),
    });
    releaseFreedMemory(); // libbpf's load-time BTF parsing

    let lastReport = Date.now();

    const report = (final: boolean): void => {
      const r = collector.collect(final);
      ctx.report({ listeners: r.listeners });
      lastReport = Date.now();
      view.show(r);
      // The /proc scans and iterator reads leave freed C memory behind (see memory.ts).
      releaseFreedMemory();
    };

    const view = makeView(ctx, opts, sight.perSyn);

    if (opts.events) {
      const narrowed = Boolean(opts.netns || ctx.target.cgroup);
      ctx.ringBuffer(loaded.obj, 'events', (rec) => {
        const e = collector.event(rec, (ns) => ctx.session.wallTimeOf(ns), narrowed);
        if (e) view.event(e);
      });
    }

    ctx.session.onInterval(() => report(false), intervalSec);

    ctx.session.onFinish(() => {
      // A last, partial interval (Ctrl-C, -d): worth a report if it is not empty.
      if (Date.now() - lastReport > 200) report(true);
      if (opts.hist) printHist(ctx, collector.histograms());
      const w = collector.walks;
      if (w.delta + w.full) ctx.log.verbose(`open-files walks: ${w.delta} delta (${w.redone} of them redone in full), ${w.full} full`);
      if (w.ownWalks + w.ownByAddress) ctx.log.verbose(`listeners no process holds: ${w.ownWalks} walks of this namespace, ${w.ownByAddress} reads by address`);
    });

    if (demo) {
      if (!opts.json) ctx.out.line(demo.describe());
      else ctx.log.verbose(demo.describe().replace(/\n/g, '; '));
      const total = opts.duration ?? 12;
      if (opts.duration === undefined) setTimeout(() => ctx.session.stop('done'), total * 1000).unref();
      demo.start({ loadSeconds: Math.max(1, Math.min(4, total * 0.4)) });
    }
  },
});

