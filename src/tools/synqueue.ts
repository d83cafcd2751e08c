// synqueue: SYN and accept queue fill of every TCP listener, live.
//
// Each interval: a BPF iterator snapshot of every listener (queue lengths and
// limits now, the kernel's per-socket drop counter), plus what the probes of
// src/bpf/synqueue.bpf.c counted per listener since the last report (the
// longest queues seen, overflows, drops, SYN cookies, SYN-ACK retransmits),
// plus the deltas of the system's TcpExt counters. See man rbtrace-synqueue.
import { Option, type Command } from 'commander';
import { readFileSync, readdirSync } from 'node:fs';
import { defineTool, type ToolContext } from '../core/tool.js';
import type { CommonOptions } from '../core/options.js';
import type { BpfMap } from '../core/maps.js';
import { probePaths, type AttachPath } from '../core/paths.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import { readIterator, records } from '../core/iter.js';
import { possibleCpus } from '../core/maps.js';
import { NetstatDeltas } from '../core/netstat.js';
import { SocketOwners } from '../core/sockowners.js';
import { formatLog2Hist, log2HistToJson } from '../core/output/histogram.js';
import { renderTable, ColumnPrinter } from '../core/output/table.js';
import { LiveChart } from '../core/output/chart.js';
import type { BpfLink } from '../core/object.js';
import {
  listener_info_layout as infoLayout, listener_stats_layout as statsLayout, sq_event_layout as eventLayout,
  hist_value_layout as histLayout, RODATA, ENUMS, OBJECT_FILE,
} from '../generated/synqueue.js';
import { SynqueueDemo } from './synqueue-demo.js';

export interface SynqueueOptions {
  port?: number[];
  ipv4?: boolean;
  ipv6?: boolean;
  chart?: boolean;
  table?: boolean;
  hist?: boolean;
  events?: boolean;
  demo?: boolean;
}

const TAIL = ['tpb_kfree_skb', 'tpb_synack'];
const CLASSIC = ['tp_kfree_skb', 'tp_synack'];

/**
 * Best first. The iterator is in every path: it is the snapshot. fentry and
 * kprobe see each enqueue at inet_csk_complete_hashdance(); the tracepoint paths
 * through sock:sk_data_ready, which kernels before 6.2 lack: there it is
 * optional, and the accept queue's most is what the snapshots saw (see
 * ENQUEUE_PROGRAMS).
 */
export const ATTACH_PATHS: AttachPath[] = [
  {
    name: 'fentry',
    programs: ['dump_listeners', 'fe_syn4', 'fe_syn6', 'fe_enqueue', ...TAIL],
    note: 'fentry on tcp_v{4,6}_conn_request (every SYN) and inet_csk_complete_hashdance (every enqueue) + tp_btf kfree_skb/tcp_retransmit_synack + iter/tcp',
  },
  {
    name: 'kprobe',
    programs: ['dump_listeners', 'kp_syn4', 'kp_syn6', 'kp_enqueue', ...CLASSIC],
    note: 'kprobes on tcp_v{4,6}_conn_request (every SYN) and inet_csk_complete_hashdance (every enqueue) + skb/tcp tracepoints + iter/tcp',
  },
  {
    name: 'tp_btf',
    programs: ['dump_listeners', ...TAIL],
    optional: ['tpb_data_ready'],
    note: 'tp_btf sk_data_ready (6.2+)/kfree_skb/tcp_retransmit_synack + iter/tcp; SYN-time overflows inferred from sk_drops, no per-listener SYN cookie count',
  },
  {
    name: 'tracepoint',
    programs: ['dump_listeners', ...CLASSIC],
    optional: ['tp_data_ready'],
    note: 'sock:sk_data_ready (6.2+), skb:kfree_skb, tcp:tcp_retransmit_synack + iter/tcp; SYN-time overflows inferred from sk_drops, no per-listener SYN cookie count',
  },
];

/** Programs that see each connection join an accept queue (max lengths, enqueued, --hist). */
export const ENQUEUE_PROGRAMS = new Set(['fe_enqueue', 'kp_enqueue', 'tpb_data_ready', 'tp_data_ready']);

/** Paths that see every SYN (so count overflows and cookies one by one). */
export const PER_SYN = new Set(['fentry', 'kprobe']);

const NETSTAT = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed']
  .map((n) => `TcpExt.${n}`);

const AF_INET6 = 10;

// ---- small pure helpers (unit-tested) -----------------------------------

export function formatAddr(family: number, bytes: ArrayLike<number>): string {
  if (family !== AF_INET6) return Array.from(bytes).slice(0, 4).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Collapse the longest run of zero words (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

/** 127.0.0.1:80, [::1]:80, *:80 (any IPv4), [::]:80. */
export function formatListener(addr: string, port: number, family: number): string {
  if (family === AF_INET6) return `[${addr}]:${port}`;
  return `${addr === '0.0.0.0' ? '*' : addr}:${port}`;
}

export function parsePorts(text: string): number[] {
  const ports = text.split(',').map((p) => p.trim());
  return ports.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) throw new UsageError(`--port wants port numbers (1-65535, comma-separated), got '${text}'`, 'e.g. --port 80,443');
    return n;
  });
}

/**
 * The SYN queue's effective limit, as tcp_conn_request() applies it: with
 * syncookies=1 a full queue (qlen > sk_max_ack_backlog) switches to cookies;
 * with syncookies=0 SYNs are also dropped once fewer than a quarter of
 * tcp_max_syn_backlog slots are left; syncookies=2 sends cookies always.
 */
export function synLimit(acceptLimit: number, syncookies: number, maxSynBacklog: number): number {
  if (syncookies === 2) return 0;
  if (syncookies === 0) return Math.min(acceptLimit, maxSynBacklog - (maxSynBacklog >> 2));
  return acceptLimit;
}

export function readSysctl(name: string, fallback: number): number {
  try {
    return Number(readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim());
  } catch {
    return fallback;
  }
}

// ---- data -------------------------------------------------------------------

interface Snapshot {
  sk: string;
  ino: number;
  family: number;
  addr: string;
  port: number;
  acceptQueue: number;
  acceptLimit: number;
  synQueue: number;
  skDrops: number;
}

interface Counted {
  enqueues: number;
  overflows: number;
  drops: number;
  syncookies: number;
  synackRetrans: number;
  syns: number;
  freed: number;
  acceptMax: number;
  synMax: number;
}

/** One listener's line of a report: the JSON record's listeners[] entry. */
export interface ListenerRow {
  addr: string;
  port: number;
  family: 'ipv4' | 'ipv6';
  pid: number | null;
  comm: string | null;
  accept_queue: number;
  accept_queue_max: number;
  accept_limit: number;
  syn_queue: number;
  syn_queue_max: number;
  syn_limit: number;
  overflows: number;
  drops: number;
  syncookies: number | null;
  synack_retrans: number;
  /** null when no probe sees enqueues (tracepoint paths before 6.2). */
  enqueued: number | null;
  /** true when overflows were inferred from sk_drops (no per-SYN probe). */
  overflows_inferred?: boolean;
}

const skKey = (dv: DataView, offset: number) => dv.getBigUint64(offset, true).toString(16);

function readSnapshot(link: BpfLink): Map<string, Snapshot> {
  const out = new Map<string, Snapshot>();
  const F = infoLayout.fields;
  for (const rec of records(readIterator(link), infoLayout.size)) {
    const i = infoLayout.decode(rec);
    const sk = skKey(rec, F.sk.offset);
    out.set(sk, {
      sk, ino: i.ino, family: i.family, addr: formatAddr(i.family, i.addr), port: i.port,
      acceptQueue: i.accept_queue, acceptLimit: i.accept_limit, synQueue: i.syn_queue, skDrops: i.sk_drops,
    });
  }
  return out;
}

function emptyCounted(): Counted {
  return { enqueues: 0, overflows: 0, drops: 0, syncookies: 0, synackRetrans: 0, syns: 0, freed: 0, acceptMax: 0, synMax: 0 };
}

/** Drain the per-CPU stats map: listener -> counts since the last drain. */
function drainStats(ctxMap: BpfMap): Map<string, Counted> {
  const out = new Map<string, Counted>();
  const slot = (statsLayout.size + 7) & ~7;
  for (const [k, v] of ctxMap.drainRaw()) {
    const key = skKey(new DataView(k.buffer, k.byteOffset, k.byteLength), 0);
    const c = emptyCounted();
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    for (let cpu = 0; cpu < possibleCpus(); cpu++) {
      const s = statsLayout.decode(dv, cpu * slot);
      c.enqueues += s.enqueues;
      c.overflows += s.overflows;
      c.drops += s.drops;
      c.syncookies += s.syncookies;
      c.synackRetrans += s.synack_retrans;
      c.syns += s.syns;
      c.freed += s.freed;
      c.acceptMax = Math.max(c.acceptMax, s.accept_max);
      c.synMax = Math.max(c.synMax, s.syn_max);
    }
    out.set(key, c);
  }
  return out;
}

/**
 * Combine a listener's snapshot now, its snapshot at the start of the
 * interval, and what the probes counted in between, into one report row.
 */
export function buildRow(now: Snapshot, prev: Snapshot | undefined, c: Counted, perSyn: boolean,
  sys: { syncookies: number; maxSynBacklog: number }, seesEnqueues = true): Omit<ListenerRow, 'pid' | 'comm'> {
  const acceptMax = Math.max(c.acceptMax, now.acceptQueue, prev?.acceptQueue ?? 0);
  const synMax = Math.max(c.synMax, now.synQueue, prev?.synQueue ?? 0);
  // sk_drops counts every tcp_listendrop() on this listener (what TcpExt
  // ListenDrops counts), plus every packet it discarded through kfree_skb
  // (a final ACK that met a full accept queue is counted both ways, a
  // duplicate SYN only the second way). The probes count the latter
  // ('freed'), so the difference is this listener's share of ListenDrops.
  // A listener born during the interval had all its drops in it.
  const skDelta = prev ? (now.skDrops - prev.skDrops) >>> 0 : now.skDrops;
  const drops = Math.max(0, skDelta - c.freed);
  let overflows = c.overflows;
  let inferred = false;
  if (!perSyn && acceptMax > now.acceptLimit) {
    // SYNs dropped because the accept queue was full leave no kfree_skb
    // (the kernel "consumes" them); with the queue seen beyond its limit this
    // interval, this listener's drops were overflows.
    overflows = Math.max(c.overflows, drops);
    inferred = overflows > c.overflows;
  }
  return {
    addr: now.addr,
    port: now.port,
    family: now.family === AF_INET6 ? 'ipv6' : 'ipv4',
    accept_queue: now.acceptQueue,
    accept_queue_max: acceptMax,
    accept_limit: now.acceptLimit,
    syn_queue: now.synQueue,
    syn_queue_max: synMax,
    syn_limit: synLimit(now.acceptLimit, sys.syncookies, sys.maxSynBacklog),
    overflows,
    drops,
    syncookies: perSyn ? c.syncookies : null,
    synack_retrans: c.synackRetrans,
    enqueued: seesEnqueues ? c.enqueues : null,
    ...(inferred ? { overflows_inferred: true } : {}),
  };
}

// ---- the tool -----------------------------------------------------------------

function configureMaps(): void {
  // nothing to resize; kept for probePaths symmetry
}

export default defineTool<SynqueueOptions>({
  name: 'synqueue',
  summary: 'TCP SYN and accept queue fill per listener, overflows and drops, live',
  help: `Examples:
  rbtrace synqueue                     every listener, a table each second
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
      .addOption(new Option('--demo', 'run two slow local servers (backlog 500 and 4096) and a load generator, and watch them'));
  },
  probe: () => probePaths(OBJECT_FILE, ATTACH_PATHS, configureMaps),
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

    const loaded = ctx.load({
      object: OBJECT_FILE,
      paths: ATTACH_PATHS,
      rodataSpec: RODATA,
      rodata: { want_events: Boolean(opts.events), want_hist: Boolean(opts.hist) },
    });
    const perSyn = PER_SYN.has(loaded.path.name);
    const seesEnqueues = [...loaded.path.programs, ...(loaded.optional ?? [])].some((p) => ENQUEUE_PROGRAMS.has(p));
    if (!seesEnqueues) {
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
    const iterLink = loaded.links[loaded.path.programs.indexOf('dump_listeners')];
    const statsMap = loaded.obj.map('stats');
    const owners = new SocketOwners(1000);
    const netstat = new NetstatDeltas(NETSTAT);
    const sys = () => ({ syncookies: readSysctl('net.ipv4.tcp_syncookies', 1), maxSynBacklog: readSysctl('net.ipv4.tcp_max_syn_backlog', 1024) });

    // Which pids a listener must belong to (-p, -- CMD and its descendants).
    const wantedPids = (): Set<number> | undefined => {
      const root = ctx.target.tgid;
      if (root === undefined) return undefined;
      const set = new Set([root]);
      if (ctx.target.following) for (const p of descendants(root)) set.add(p);
      return set;
    };

    const selected = (s: Snapshot): boolean => {
      if (ports && !ports.has(s.port)) return false;
      if (opts.ipv4 && s.family === AF_INET6) return false;
      if (opts.ipv6 && s.family !== AF_INET6) return false;
      return true;
    };

    let prev = readSnapshot(iterLink);
    let lastReport = Date.now();
    const labels = new Map<string, string>(); // sk -> listener label, for --hist and events

    const report = (final: boolean): void => {
      const now = readSnapshot(iterLink);
      const counted = drainStats(statsMap);
      const net = netstat.take();
      const system = sys();
      const mine = [...now.values()].filter(selected);
      const own = owners.lookup(mine.map((s) => s.ino));
      const pids = wantedPids();
      const rows: ListenerRow[] = [];
      for (const s of mine) {
        const o = own.get(s.ino) ?? null;
        if (pids && (!o || !pids.has(o.pid))) continue;
        const row = { ...buildRow(s, prev.get(s.sk), counted.get(s.sk) ?? emptyCounted(), perSyn, system, seesEnqueues), pid: o?.pid ?? null, comm: o?.comm ?? null };
        labels.set(s.sk, labelOf(row));
        rows.push(row as ListenerRow);
      }
      rows.sort((a, b) => a.port - b.port || a.addr.localeCompare(b.addr));
      prev = now;
      lastReport = Date.now();
      view.show(rows, net, final);
    };

    const view = makeView(ctx, opts, loaded.path.name);

    if (opts.events) {
      const EF = eventLayout.fields;
      ctx.ringBuffer(loaded.obj, 'events', (rec) => {
        const e = eventLayout.decode(rec);
        const port = e.lport;
        if (ports && !ports.has(port)) return;
        if (opts.ipv4 && e.family === AF_INET6) return;
        if (opts.ipv6 && e.family !== AF_INET6) return;
        const sk = skKey(rec, EF.sk.offset);
        const laddr = formatAddr(e.family, e.laddr);
        view.event({
          time: new Date(ctx.session.wallTimeOf(e.ts_ns)).toISOString(),
          event: e.kind === ENUMS.SQ_OVERFLOW ? 'overflow' : 'drop',
          listener: labels.get(sk) ?? formatListener(laddr, port, e.family),
          addr: laddr,
          port,
          remote_addr: formatAddr(e.family, e.raddr),
          remote_port: e.rport,
          reason: e.reason ? dropReasonName(e.reason) : null,
          accept_queue: e.accept_queue,
          accept_limit: e.accept_limit,
          syn_queue: e.syn_queue,
        });
      });
    }

    const timer = setInterval(() => {
      try {
        report(false);
      } catch (err) {
        ctx.session.fail(err);
      }
    }, intervalSec * 1000);
    ctx.session.own({ close: () => clearInterval(timer) });

    ctx.session.onFinish(() => {
      // A last, partial interval (Ctrl-C, -d): worth a report if it is not empty.
      if (Date.now() - lastReport > 200) report(true);
      if (opts.hist) printHist(ctx, loaded.obj.map('hist'), labels);
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

function labelOf(r: Pick<ListenerRow, 'addr' | 'port' | 'family'>): string {
  return formatListener(r.addr, r.port, r.family === 'ipv6' ? AF_INET6 : 2);
}

/** Processes descended from `root` (from /proc/PID/stat ppid links). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        parent.set(Number(d), ppid);
      } catch {
        // gone
      }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}


/** Whether skb:kfree_skb names the receiving socket (rx_sk, 6.11+); true when its format cannot be read. */
function kfreeSkbHasRxSk(): boolean {
  for (const dir of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) {
    try {
      return /\brx_sk\b/.test(readFileSync(`${dir}/events/skb/kfree_skb/format`, 'utf8'));
    } catch {
      // try the next
    }
  }
  return true;
}

// skb drop reasons by number, from the running kernel's tracepoint format when
// tracefs is there (the numbering changes between kernels), else a number.
let reasonNames: Map<number, string> | undefined;
function dropReasonName(n: number): string {
  if (!reasonNames) {
    reasonNames = new Map();
    for (const dir of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) {
      try {
        const fmt = readFileSync(`${dir}/events/skb/kfree_skb/format`, 'utf8');
        for (const m of fmt.matchAll(/\{\s*(\d+),\s*"(\w+)"\s*\}/g)) reasonNames.set(Number(m[1]), m[2]);
        break;
      } catch {
        // try the next
      }
    }
  }
  return reasonNames.get(n) ?? `reason ${n}`;
}

// ---- views ----------------------------------------------------------------------

interface EventRecord {
  time: string;
  event: 'overflow' | 'drop';
  listener: string;
  addr: string;
  port: number;
  remote_addr: string | null;
  remote_port: number | null;
  reason: string | null;
  accept_queue: number;
  accept_limit: number;
  syn_queue: number;
  count?: number;
  inferred?: boolean;
}

interface View {
  show(rows: ListenerRow[], netstat: Record<string, number>, final: boolean): void;
  event(e: EventRecord): void;
}

function makeView(ctx: ToolContext, opts: SynqueueOptions & CommonOptions, path: string): View {
  const perSyn = PER_SYN.has(path);
  if (opts.events) {
    const printer = new ColumnPrinter([
      { name: 'TIME', width: 8 }, { name: 'EVENT', width: 8 }, { name: 'LISTEN', width: 22 },
      { name: 'REMOTE', width: 22 }, { name: 'ACCEPT', width: 11 }, { name: 'SYN', width: 6 }, { name: 'REASON', width: 0 },
    ]);
    if (!opts.json) ctx.out.write(printer.header());
    const print = (e: EventRecord) => {
      if (opts.json) return ctx.out.record(e);
      const remote = e.remote_addr === null ? (e.count ? `${e.count} SYNs` : '-') : formatListener(e.remote_addr, e.remote_port ?? 0, e.remote_addr.includes(':') ? AF_INET6 : 2);
      ctx.out.write(printer.row([e.time.slice(11, 19), e.event, e.listener, remote, `${e.accept_queue}/${e.accept_limit}`, e.syn_queue,
        e.inferred ? 'SYNs dropped at a full accept queue (counted from sk_drops: this attach path does not see them one by one)' : e.reason ?? '']));
    };
    return {
      event: print,
      show(rows) {
        // Without per-SYN probes, SYN-time overflows are only known as counts.
        if (perSyn) return;
        for (const r of rows) {
          if (!r.overflows_inferred) continue;
          print({
            time: new Date().toISOString(), event: 'overflow', listener: labelOf(r), addr: r.addr, port: r.port,
            remote_addr: null, remote_port: null, reason: null, accept_queue: r.accept_queue, accept_limit: r.accept_limit,
            syn_queue: r.syn_queue, count: r.overflows, inferred: true,
          });
        }
      },
    };
  }

  if (opts.json) {
    return {
      event() {},
      show(rows, netstat, final) {
        ctx.out.record({ time: new Date().toISOString(), attach: path, ...(final ? { final: true } : {}), listeners: rows, netstat });
      },
    };
  }

  let chart: ChartView | undefined;
  let decided = Boolean(opts.chart);
  return {
    event() {},
    show(rows, netstat) {
      if (!decided) {
        decided = true;
        // Default to the chart on a terminal when exactly one listener is selected.
        if (!opts.table && ctx.out.isTTY && rows.length === 1 && (opts.port || opts.pid !== undefined || opts.demo)) opts.chart = true;
      }
      if (opts.chart && ctx.out.isTTY) {
        chart ??= new ChartView(ctx);
        chart.show(rows, netstat);
        return;
      }
      ctx.out.write(renderTableReport(ctx, rows, netstat, perSyn));
    },
  };
}

/** The non-zero counter deltas, or a word that all are zero. */
export function formatNetstat(netstat: Record<string, number>, hi: (s: string) => string = (s) => s): string {
  const moved = Object.entries(netstat).filter(([, v]) => v > 0);
  return moved.length ? moved.map(([k, v]) => hi(`${k} +${v}`)).join('  ') : 'no listen overflows, drops or SYN cookies';
}

function pct(n: number, limit: number): string {
  return limit > 0 ? `${Math.round((100 * n) / limit)}%` : '-';
}

export function renderTableReport(ctx: Pick<ToolContext, 'color'>, rows: ListenerRow[], netstat: Record<string, number>, perSyn: boolean): string {
  const c = ctx.color;
  const head = `${new Date().toTimeString().slice(0, 8)}  TcpExt: ${formatNetstat(netstat, (s) => c.yellow(s))}`;
  if (rows.length === 0) return `${head}\n(no listener matches)\n`;
  const body = renderTable(
    ['LISTEN', 'PID', 'COMM', 'ACCEPT', 'MAX', 'LIMIT', 'FILL', 'SYN', 'MAX', 'LIMIT', 'OVERFLOW', 'DROPS', 'COOKIES', 'SYNACK-RTX'],
    rows.map((r) => [
      labelOf(r), r.pid ?? '-', r.comm ?? '-',
      r.accept_queue, r.accept_queue_max, r.accept_limit,
      r.accept_queue_max > r.accept_limit ? c.red(pct(r.accept_queue_max, r.accept_limit)) : pct(r.accept_queue_max, r.accept_limit),
      r.syn_queue, r.syn_queue_max, r.syn_limit,
      r.overflows ? c.red(String(r.overflows)) + (r.overflows_inferred ? '*' : '') : '0',
      r.drops ? c.red(String(r.drops)) : '0',
      r.syncookies === null ? '-' : r.syncookies, r.synack_retrans,
    ]),
    { align: ['left', 'right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'], color: c },
  );
  const foot = !perSyn && rows.some((r) => r.overflows_inferred) ? '* SYN-time overflows counted from the listener\'s sk_drops (no per-SYN probe on this kernel)\n' : '';
  return `${head}\n${body}${foot}\n`;
}

/** One live chart per listener (accept and SYN queue, most seen each interval, against the limit). */
class ChartView {
  private readonly charts = new Map<string, LiveChart>();
  private prevLines = 0;
  constructor(private readonly ctx: ToolContext) {}

  show(rows: ListenerRow[], netstat: Record<string, number>): void {
    let frame = '';
    for (const r of rows.slice(0, 4)) {
      const key = labelOf(r);
      let chart = this.charts.get(key);
      if (!chart) {
        chart = new LiveChart({
          title: '',
          series: [{ name: 'accept queue (max)', color: 'green' }, { name: 'SYN queue (max)', color: 'cyan' }, { name: 'accept limit', color: 'red' }],
          height: 10,
          maxPoints: Math.max(20, Math.min(120, this.ctx.out.columns - 14)),
          color: this.ctx.color.level > 0,
          format: (x) => x.toFixed(0).padStart(8),
        });
        this.charts.set(key, chart);
      }
      chart.push({ 'accept queue (max)': r.accept_queue_max, 'SYN queue (max)': r.syn_queue_max, 'accept limit': r.accept_limit });
      const title = `${key}  ${r.comm ?? '-'}${r.pid ? ` (${r.pid})` : ''}  accept ${r.accept_queue}/${r.accept_limit}  syn ${r.syn_queue}/${r.syn_limit}` +
        `  overflows ${r.overflows}  drops ${r.drops}  cookies ${r.syncookies ?? '-'}`;
      frame += chart.render().replace(/^\n/, title + '\n');
    }
    if (rows.length > 4) frame += `(${rows.length - 4} more listeners: narrow with --port)\n`;
    frame += `TcpExt: ${formatNetstat(netstat, (s) => this.ctx.color.yellow(s))}\n`;
    const up = this.prevLines > 0 ? `\x1b[${this.prevLines}A\r\x1b[0J` : '';
    this.ctx.out.write(up + frame);
    this.prevLines = frame.split('\n').length - 1;
  }
}

function printHist(ctx: ToolContext, map: BpfMap, labels: Map<string, string>): void {
  const slot = (histLayout.size + 7) & ~7;
  const entries: { sk: string; limit: number; slots: number[] }[] = [];
  for (const k of map.keysRaw()) {
    const v = map.lookupRaw(k);
    if (!v) continue;
    const kd = new DataView(k.buffer, k.byteOffset, k.byteLength);
    const vd = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const slots = new Array<number>(32).fill(0);
    for (let cpu = 0; cpu < possibleCpus(); cpu++) {
      const h = histLayout.decode(vd, cpu * slot);
      h.slots.forEach((n, i) => (slots[i] += n));
    }
    entries.push({ sk: skKey(kd, 0), limit: kd.getUint32(8, true), slots });
  }
  const shown = entries.filter((e) => labels.has(e.sk)); // only listeners the filters selected
  if (ctx.opts.json) {
    ctx.out.record({
      time: new Date().toISOString(),
      histograms: shown.map((e) => ({ listener: labels.get(e.sk), accept_limit: e.limit, accept_queue: log2HistToJson(e.slots) })),
    });
    return;
  }
  if (shown.length === 0) {
    ctx.out.line('no connection joined an accept queue of the selected listeners');
    return;
  }
  for (const e of shown) {
    ctx.out.line(`\nlistener ${labels.get(e.sk)}  backlog_max = ${e.limit}`);
    ctx.out.write(formatLog2Hist(e.slots, 'backlog'));
  }
}
