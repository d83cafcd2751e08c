// The exporter's sources: one per tool, each loading that tool's BPF object
// once (through the SDK's attach-path fallback) and turning what the tool's
// maps hold into metric families. The readings themselves live in the
// tools' collector modules (syscount/collect.ts, synqueue/collect.ts, ...).
import { loadWithPaths, type Loaded } from '../../core/paths.js';
import { RingBuffer, lostEvents } from '../../core/ringbuf.js';
import { possibleCpus } from '../../core/maps.js';
import { errnoName, syscallName } from '../../core/names.js';
import { findRubyBinary } from '../../core/uprobes.js';
import { readComm } from '../../core/process.js';
import { log2Buckets, type MetricFamily, type Sample } from '../../core/metrics/exposition.js';
import { pathsFor as syscountPaths, sizeMaps as sizeSyscountMaps, syscallNumbersRodata } from '../syscount.js';
import { readErrnoTotals, readSyscallTotals, syscountMaps } from '../syscount/collect.js';
import { ATTACH_PATHS as SYNQUEUE_PATHS, ENQUEUE_PROGRAMS, PER_SYN } from '../synqueue.js';
import { SynqueueCollector, iteratorLinks } from '../synqueue/collect.js';
import { Target } from '../../core/target.js';
import type { CgroupDir } from '../../core/cgroup.js';
import { SYSCALL_PATHS as EXEC_PATHS } from '../execsnoop.js';
import { PROBES as GC_PROBES, PROVIDER as GC_PROVIDER, checkGcProbes, drainStats as drainGcStats, readRss } from '../gcstat.js';
import * as syscountGen from '../../generated/syscount.js';
import * as synqueueGen from '../../generated/synqueue.js';
import * as execGen from '../../generated/execsnoop.js';
import * as gcGen from '../../generated/gcstat.js';
import { scalarLayout } from '../../core/layout.js';

export interface Source {
  tool: string;
  /** The attach path that loaded. */
  path: string;
  /** Read the maps now and return this tool's families. */
  collect(): MetricFamily[];
  /** Events lost by the BPF side (ring buffer full), since load. */
  lost(): number;
  close(): void;
}

export const SOURCE_NAMES = ['syscount', 'synqueue', 'execsnoop', 'gcstat'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

type Log = (line: string) => void;

function lostOf(loaded: Loaded): () => number {
  const map = loaded.obj.map('rbtrace_lost');
  return () => lostEvents(map);
}

// ---- syscount ---------------------------------------------------------------

/** (syscall, errno) pairs counted in the kernel: a busy host shows a few hundred. */
const ERRNO_PAIRS = 4096;

export function syscountSource(log: Log, scope: Target): Source {
  const loaded = loadWithPaths({
    object: syscountGen.SKELETON,
    paths: syscountPaths(false),
    log,
    configure: (obj) => {
      sizeSyscountMaps(obj, { byProcess: false, latency: false, hist: false });
      obj.map('errnos').maxEntries = ERRNO_PAIRS;
      obj.setRodata({
        self_tgid: process.pid,
        want_errnos: true,
        ...syscallNumbersRodata(),
        ...scope.rodata(),
      });
    },
  });
  scope.attach(loaded.obj);
  const maps = syscountMaps(loaded.obj);
  return {
    tool: 'syscount',
    path: loaded.path.name,
    lost: lostOf(loaded),
    close: () => loaded.obj.close(),
    collect() {
      const calls: Sample[] = [];
      for (const [nr, v] of readSyscallTotals(maps.syscalls, maps.rare, maps.slots)) calls.push({ labels: { syscall: syscallName(nr) }, value: v.count });
      const errors: Sample[] = readErrnoTotals(maps.errnos).filter((e) => e.count > 0)
        .map((e) => ({ labels: { syscall: syscallName(e.nr), errno: errnoName(e.errno) }, value: e.count }));
      return [
        { name: 'rbtrace_syscalls', type: 'counter', help: 'Syscalls completed, per syscall (every process but the exporter).', samples: calls },
        { name: 'rbtrace_syscall_errors', type: 'counter', help: 'Syscalls that returned an error, per syscall and errno.', samples: errors },
      ];
    },
  };
}

// ---- synqueue ---------------------------------------------------------------

interface ListenerState {
  key: string;
  labels: { addr: string; port: string; netns: string };
  overflows: number;
  drops: number;
  synackRetrans: number;
}

/**
 * synqueue's own collector (synqueue/collect.ts): every network namespace
 * with a process in it, each listener's row as `rbtrace synqueue` shows it.
 */
export function synqueueSource(log: Log, scope: Target): Source {
  const loaded = loadWithPaths({ object: synqueueGen.SKELETON, paths: SYNQUEUE_PATHS, log });
  const collector = new SynqueueCollector({
    ...iteratorLinks(loaded),
    statsMap: loaded.obj.map('stats'),
    attach: loaded.path.name,
    perSyn: PER_SYN.has(loaded.path.name),
    seesEnqueues: [...loaded.path.programs, ...(loaded.optional ?? [])].some((p) => ENQUEUE_PROGRAMS.has(p)),
    // --cgroup: listeners whose owner is in the directory (decided in user
    // space, as `rbtrace synqueue --cgroup` does: its probes run in softirq).
    cgroup: scope.cgroup?.relative,
  });
  collector.collect(); // the first reading sets the baseline
  // Counters per label set: listeners sharing addr:port in one namespace
  // (SO_REUSEPORT) add up, and deltas are accumulated, so a counter only goes
  // up while its listener exists; it goes when the last socket with its labels closes.
  const totals = new Map<string, ListenerState>();

  return {
    tool: 'synqueue',
    path: loaded.path.name,
    lost: lostOf(loaded),
    close: () => loaded.obj.close(),
    collect() {
      const report = collector.collect();
      const gauges = new Map<string, { key: string; labels: ListenerState['labels']; aq: number; aqMax: number; aqLimit: number; sq: number; sqMax: number; sqLimit: number }>();
      for (const row of report.listeners) {
        const labels = { addr: row.addr, port: String(row.port), netns: String(row.netns) };
        const key = `${row.addr}|${row.port}|${row.netns}`;
        let t = totals.get(key);
        if (!t) totals.set(key, (t = { key, labels, overflows: 0, drops: 0, synackRetrans: 0 }));
        t.overflows += row.overflows;
        t.drops += row.drops;
        t.synackRetrans += row.synack_retrans;
        const g = gauges.get(key) ?? { key, labels, aq: 0, aqMax: 0, aqLimit: 0, sq: 0, sqMax: 0, sqLimit: 0 };
        g.aq += row.accept_queue;
        g.aqMax = Math.max(g.aqMax, row.accept_queue_max);
        g.aqLimit += row.accept_limit;
        g.sq += row.syn_queue;
        g.sqMax = Math.max(g.sqMax, row.syn_queue_max);
        g.sqLimit += row.syn_limit;
        gauges.set(key, g);
      }
      for (const key of totals.keys()) if (!gauges.has(key)) totals.delete(key);
      const gs = [...gauges.values()];
      const ts = [...totals.values()];
      const gauge = (name: string, help: string, f: (g: (typeof gs)[number]) => number): MetricFamily =>
        ({ name, type: 'gauge', help, samples: gs.map((g) => ({ labels: g.labels, value: f(g), key: g.key })) });
      const counter = (name: string, help: string, f: (t: ListenerState) => number): MetricFamily =>
        ({ name, type: 'counter', help, samples: ts.map((t) => ({ labels: t.labels, value: f(t), key: t.key })) });
      return [
        counter('rbtrace_listen_overflows', 'Connections refused because the accept queue was full, per TCP listener.', (t) => t.overflows),
        counter('rbtrace_listen_drops', 'Packets the listener dropped, overflows included (its share of TcpExt ListenDrops), per TCP listener.', (t) => t.drops),
        counter('rbtrace_listen_synack_retransmits', 'SYN-ACKs retransmitted for connections in the SYN queue, per TCP listener.', (t) => t.synackRetrans),
        gauge('rbtrace_listen_accept_queue_length', 'Connections waiting in the accept queue now.', (g) => g.aq),
        gauge('rbtrace_listen_accept_queue_max', 'Longest accept queue seen since the previous collection.', (g) => g.aqMax),
        gauge('rbtrace_listen_accept_queue_limit', 'Accept queue limit (the listen() backlog, capped by net.core.somaxconn).', (g) => g.aqLimit),
        gauge('rbtrace_listen_syn_queue_length', 'Half-open connections in the SYN queue now.', (g) => g.sq),
        gauge('rbtrace_listen_syn_queue_max', 'Longest SYN queue seen since the previous collection.', (g) => g.sqMax),
        gauge('rbtrace_listen_syn_queue_limit', 'Effective SYN queue limit (0: SYN cookies always, tcp_syncookies=2).', (g) => g.sqLimit),
      ];
    },
  };
}

// ---- execsnoop ---------------------------------------------------------------

/** execsnoop's syscall paths with only their exit programs: one small record per exec, with its result. */
const EXEC_EXIT_PATHS = EXEC_PATHS.map((p) => ({
  ...p,
  programs: p.programs.filter((n) => n.includes('exit')),
  attachTargets: p.attachTargets && Object.fromEntries(Object.entries(p.attachTargets).filter(([k]) => k.includes('exit'))),
}));

/** The result label of an exec: ok, or the errno's name. */
export function execResult(retval: number): string {
  return retval === 0 ? 'ok' : errnoName(-retval);
}

export function execsnoopSource(log: Log, scope: Target): Source {
  const loaded = loadWithPaths({
    object: execGen.SKELETON,
    paths: EXEC_EXIT_PATHS,
    log,
    configure: (obj) => {
      obj.map('scratch').maxEntries = possibleCpus();
      obj.setRodata(scope.rodata());
    },
  });
  scope.attach(loaded.obj);
  const F = execGen.exec_event_layout.fields;
  const counts = new Map<string, number>();
  const rb = new RingBuffer(loaded.obj.map('events'), (rec) => {
    if (rec.getUint32(F.kind.offset, true) !== execGen.ENUMS.EXEC_EXIT) return;
    const result = execResult(rec.getInt32(F.retval.offset, true));
    counts.set(result, (counts.get(result) ?? 0) + 1);
  });
  // Polled often enough that 1 MiB of ring buffer never fills between two scrapes.
  rb.start(100);
  return {
    tool: 'execsnoop',
    path: loaded.path.name,
    lost: lostOf(loaded),
    close: () => { rb.close(); loaded.obj.close(); },
    collect() {
      rb.consume();
      return [{
        name: 'rbtrace_execs', type: 'counter', help: 'execve/execveat calls completed, by result (ok, or the errno name).',
        samples: [...counts].map(([result, value]) => ({ labels: { result }, value })),
      }];
    },
  };
}

// ---- gcstat ---------------------------------------------------------------

/** Slots of the GC histogram always shown: le up to 2^21 us (about 2 s). */
const GC_MIN_SLOTS = 21;

export function gcstatSource(log: Log, scope: Target): Source {
  const binary = findRubyBinary({});
  checkGcProbes(binary);
  const programs = GC_PROBES.map((p) => p.program);
  // No pid: every process that maps this libruby (USDT semaphores through the kernel's ref counter).
  const loaded = loadWithPaths({
    object: gcGen.SKELETON,
    log,
    paths: [{
      name: 'usdt', programs, note: `USDT ${GC_PROVIDER}:gc__{mark,sweep}__{begin,end} in ${binary}, every process`,
      attach: (o) => GC_PROBES.map((p) => o.program(p.program).attachUsdt({ binary, provider: GC_PROVIDER, name: p.name })),
    }],
    configure: (obj) => obj.setRodata(scope.rodata()),
  });
  scope.attach(loaded.obj);
  const hists = loaded.obj.map('hists').typed(scalarLayout('u32'), gcGen.gc_hist_layout);
  const comms = new Map<number, string>();
  const pids = new Set<number>();
  const sums = { mark: 0, sweep: 0 };
  return {
    tool: 'gcstat',
    path: loaded.path.name,
    lost: lostOf(loaded),
    close: () => loaded.obj.close(),
    collect() {
      for (const [pid, e] of drainGcStats(loaded.obj, comms)) {
        pids.add(pid);
        sums.mark += e.mark.total_ns;
        sums.sweep += e.sweep.total_ns;
      }
      const rss: Sample[] = [];
      for (const pid of [...pids].sort((a, b) => a - b)) {
        const r = readRss(pid);
        if (!r) { pids.delete(pid); comms.delete(pid); continue; } // gone: its series goes too
        // The name now (a process may rename itself after its first GC).
        rss.push({ labels: { pid: String(pid), comm: readComm(pid) }, value: r.rss });
      }
      const histograms = (['mark', 'sweep'] as const).map((phase) => {
        const slots = hists.lookup({ value: phase === 'mark' ? gcGen.ENUMS.GC_MARK : gcGen.ENUMS.GC_SWEEP })?.slots ?? [];
        return { labels: { phase }, ...log2Buckets(slots, 1e-6, GC_MIN_SLOTS), sum: sums[phase] / 1e9 };
      });
      return [
        { name: 'rbtrace_ruby_gc_seconds', type: 'histogram', unit: 'seconds', help: 'Duration of Ruby GC phases (USDT gc__mark/gc__sweep), every ruby on the host.', histograms },
        { name: 'rbtrace_ruby_rss_bytes', type: 'gauge', unit: 'bytes', help: 'Resident set size (VmRSS) of each ruby process seen doing GC.', samples: rss },
      ];
    },
  };
}

/**
 * What every source traces: all processes, or with --cgroup only the tasks
 * in one cgroup v2 directory (rbtrace.bpf.h's filter: rodata before load,
 * the directory's fd into rbtrace_cgroup after).
 */
export function exporterScope(cgroup?: CgroupDir): Target {
  const scope = Target.all();
  scope.cgroup = cgroup;
  return scope;
}

export const SOURCES: Record<SourceName, (log: Log, scope: Target) => Source> = {
  syscount: syscountSource,
  synqueue: synqueueSource,
  execsnoop: execsnoopSource,
  gcstat: gcstatSource,
};
