// tcplife: one line per closed TCP connection (bcc's tcplife): who held it,
// its addresses and ports, bytes each way and how long it lived, in every
// network namespace. src/bpf/tcplife.bpf.c (loaded by probe.ts) writes a
// record at each close; collect.ts decodes it, views.ts prints it.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { portListParser } from '../../core/parsers.js';
import { UsageError } from '../../core/errors.js';
import { CgroupPaths, cgroupColumns, cgroupFields, containerOf } from '../../core/linux/cgroup.js';
import { TCPLIFE } from '../common/figures.js';
import { SKELETON } from '../../generated/tcplife.js';
import { MAX_PORTS, PATHS, loadSpec } from './probe.js';
import { decodeConnection } from './collect.js';
import { connectionCells, connectionFigures, connectionPrinter, connectionRecord, type LineMode } from './views.js';

export interface TcplifeOptions {
  time?: boolean;       // -T
  timestamp?: boolean;  // -t
  wide?: boolean;       // -w
  localport?: number[]; // -L
  remoteport?: number[]; // -D
  ipv4?: boolean;       // -4
  ipv6?: boolean;       // -6
}

function ports(flag: string) {
  const parse = portListParser(flag);
  return (text: string) => {
    const list = parse(text);
    if (list.length > MAX_PORTS) throw new UsageError(`${flag} takes at most ${MAX_PORTS} ports, got ${list.length}`, `filter on the rest with --json and jq, e.g. ${flag} 80,443`);
    return list;
  };
}

export default defineTool<TcplifeOptions>({
  name: 'tcplife',
  summary: 'one line per closed TCP connection: pid, addresses, bytes each way, lifetime',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'it prints each connection as it closes' },
  textOnly: ['time', 'timestamp', 'wide'],
  help: `Examples:
  rbtrace tcplife                    every TCP connection that closes, any namespace
  rbtrace tcplife -T -w              with the time of day, wide addresses
  rbtrace tcplife -L 80,443          only connections on local port 80 or 443
  rbtrace tcplife -D 5432 -4         only IPv4 connections to remote port 5432
  rbtrace tcplife -- curl -s https://example.com
  rbtrace tcplife --json | jq 'select(.tx_bytes > 1e6)'`,
  options(cmd: Command) {
    cmd
      .option('-T, --time', 'TIME column: wall-clock time (HH:MM:SS)')
      .option('-t, --timestamp', 'TIME(s) column: seconds since rbtrace started')
      .option('-w, --wide', 'wide columns: any IPv6 address, the whole comm')
      .addOption(new Option('-L, --localport <ports>', `only these local ports (comma-separated, up to ${MAX_PORTS})`).argParser(ports('-L')))
      .addOption(new Option('-D, --remoteport <ports>', `only these remote ports (comma-separated, up to ${MAX_PORTS})`).argParser(ports('-D')))
      .option('-4, --ipv4', 'only IPv4 connections')
      .option('-6, --ipv6', 'only IPv6 connections');
  },
  probe: () => probePaths(SKELETON, PATHS),
  kernels: { best: '5.10 tp_btf (sock:inet_sock_set_state)', fallback: '5.10 raw_tp, tracepoint' },
  paths: PATHS,
  figures: TCPLIFE,
  run(ctx, opts) {
    if (opts.ipv4 && opts.ipv6) throw new UsageError('-4 and -6 exclude each other', 'give one, or neither for both');
    const family = opts.ipv4 ? 'ipv4' : opts.ipv6 ? 'ipv6' : undefined;
    const loaded = ctx.load(loadSpec({ family, localPorts: opts.localport, remotePorts: opts.remoteport }));
    ctx.log.verbose(`attached through ${loaded.path.name}`);

    // Owners' cgroups come from BPF as ids, named here. A streamed table
    // fixes its columns first: CONTAINER when the host has containers now.
    const cgroups = new CgroupPaths();
    const cg = cgroupColumns([], { cgroup: Boolean(ctx.target.cgroup), container: [...cgroups.known()].some((p) => containerOf(p) !== null) });
    const mode: LineMode = { time: Boolean(opts.time), timestamp: Boolean(opts.timestamp), wide: Boolean(opts.wide), ipv4Only: Boolean(opts.ipv4), cgroupHeaders: cg.headers };
    const printer = connectionPrinter(mode);
    if (!opts.json) ctx.out.write(printer.header());

    const session = ctx.session;
    ctx.ringBuffer(loaded.obj, 'events', (view) => {
      const c = decodeConnection(view);
      const fields = cgroupFields(cgroups.pathOf(c.cgroup_id));
      ctx.report(connectionFigures(c));
      const wall = new Date(session.wallTimeOf(c.ts_ns));
      if (opts.json) {
        ctx.out.record(connectionRecord(c, wall, fields));
        return;
      }
      ctx.out.write(printer.row(connectionCells(c, { clock: wall.toTimeString().slice(0, 8), seconds: session.secondsSinceStart(c.ts_ns) }, mode, cg.cells(fields))));
    });
  },
});
