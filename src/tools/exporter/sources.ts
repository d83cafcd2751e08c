// The exporter's sources: one per tool (src/core/metrics/source.ts), each
// loading that tool's BPF object once and turning what the tool's maps hold
// into metric families. A tool converted to the one shape keeps its source in
// src/tools/<name>/metrics.ts (syscount's); the rest are still here.
import type { Loaded } from '../../core/paths.js';
import { RingBuffer, lostEvents } from '../../core/ringbuf.js';
import { possibleCpus } from '../../core/maps.js';
import { errnoName } from '../../core/names.js';
import { findRubyBinary } from '../../core/uprobes.js';
import { hasBpfCookie } from '../../core/usdt-pids.js';
import type { BinaryFile } from '../../core/procfiles.js';
import type { BpfObject } from '../../core/object.js';
import { RubyDiscovery, hasRubyGcProbes } from './rubies.js';
import { ListenerSeries } from './listeners.js';
import { readComm } from '../../core/process.js';
import { log2Buckets, type Sample } from '../../core/metrics/exposition.js';
import { syscountSource } from '../syscount/metrics.js';
import { tcpretransSource } from '../tcpretrans/metrics.js';
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { ATTACH_PATHS as SYNQUEUE_PATHS, ENQUEUE_PROGRAMS, PER_SYN } from '../synqueue.js';
import { SynqueueCollector, iteratorLinks } from '../synqueue/collect.js';
import { Target } from '../../core/target.js';
import type { CgroupDir } from '../../core/cgroup.js';
import { SYSCALL_PATHS as EXEC_PATHS } from '../execsnoop.js';
import { PROBES as GC_PROBES, PROVIDER as GC_PROVIDER, checkGcProbes, drainStats as drainGcStats, readRss } from '../gcstat.js';
import * as synqueueGen from '../../generated/synqueue.js';
import * as execGen from '../../generated/execsnoop.js';
import * as gcGen from '../../generated/gcstat.js';
import { scalarLayout } from '../../core/layout.js';
import { RbtraceError } from '../../core/errors.js';

export type Source = MetricSource;

export const SOURCE_NAMES = ['syscount', 'synqueue', 'execsnoop', 'gcstat', 'tcpretrans'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

function lostOf(loaded: Loaded): () => number {
  const map = loaded.obj.map('rbtrace_lost');
  return () => lostEvents(map);
}

// ---- synqueue ---------------------------------------------------------------

/**
 * synqueue's own collector (synqueue/collect.ts): every network namespace
 * with a process in it, each listener's row as `rbtrace synqueue` shows it.
 */
export const synqueueSource: SourceFactory = ({ load, scope, maxSeries }) => {
  // Unscoped: --cgroup is applied to each listener's owner in user space (below).
  const loaded = load({ skeleton: synqueueGen.SKELETON, paths: SYNQUEUE_PATHS }, { unscoped: true });
  const collector = new SynqueueCollector({
    ...iteratorLinks(loaded),
    statsMap: loaded.obj.map('stats'),
    attach: loaded.path.name,
    perSyn: PER_SYN.has(loaded.path.name),
    seesEnqueues: [...ENQUEUE_PROGRAMS].some((p) => loaded.has(p)),
    // --cgroup: listeners whose owner is in the directory (decided in user
    // space, as `rbtrace synqueue --cgroup` does: its probes run in softirq).
    cgroup: scope.cgroup?.relative,
  });
  collector.collect(); // the first reading sets the baseline
  // Per label set, kept between scrapes, --max-series applied per listener (exporter/listeners.ts).
  const series = new ListenerSeries(maxSeries);
  return {
    tool: 'synqueue',
    path: loaded.path.name,
    degraded: loaded.degraded(),
    lost: lostOf(loaded),
    close: () => loaded.obj.close(),
    collect: () => series.update(collector.collect().listeners),
  };
};

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

export const execsnoopSource: SourceFactory = ({ load }) => {
  const loaded = load({
    skeleton: execGen.SKELETON,
    paths: EXEC_EXIT_PATHS,
    rodata: {},
    configure: (obj) => {
      obj.map('scratch').maxEntries = possibleCpus();
    },
  });
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
};

// ---- gcstat ---------------------------------------------------------------

/** Slots of the GC histogram always shown: le up to 2^21 us (about 2 s). */
const GC_MIN_SLOTS = 21;
/** How often processes are looked at for rubies (a ruby is traced from the first scan after it starts). */
export const RUBY_SCAN_MS = 2000;

interface RubyProcess {
  comm: string;
  /** GCs (mark phases) seen since the exporter first saw it. */
  gcs: number;
}

/**
 * Every ruby with USDT (exporter/rubies.ts): the system's libruby from the
 * start, and each other libruby or static ruby as a process running it is
 * found. Without BPF cookies (before 5.15) a shared library's USDT attaches
 * only per process: there, the system's libruby only, as before.
 */
export const gcstatSource: SourceFactory = ({ log, load }) => {
  let system: BinaryFile | undefined;
  try {
    system = findRubyBinary({});
    checkGcProbes(system);
  } catch (err) {
    // No ruby on the host (a Kubernetes node): the containers' rubies are still found.
    // Without BPF cookies they are not, and a ruby installed later is worth another try.
    if (!hasBpfCookie()) throw err instanceof RbtraceError ? new RbtraceError(err.message, { hint: err.hint, transient: true }) : err;
    log(`no system libruby with USDT (${(err as Error).message}): rubies are attached as processes run them`);
    system = undefined;
  }
  const programs = GC_PROBES.map((p) => p.program);
  const attachTo = (o: BpfObject, binary: BinaryFile) => {
    checkGcProbes(binary);
    return GC_PROBES.map((p) => o.program(p.program).attachUsdt({ binary, provider: GC_PROVIDER, name: p.name }));
  };
  // No pid: every process that maps the file (USDT semaphores through the kernel's ref counter).
  const loaded = load({
    skeleton: gcGen.SKELETON,
    rodata: {},
    paths: [{
      name: 'usdt', programs, note: `USDT ${GC_PROVIDER}:gc__{mark,sweep}__{begin,end} in every libruby and static ruby run, every process`,
      attach: () => [],
    }],
  });
  let rubies: RubyDiscovery | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    rubies = new RubyDiscovery({
      attach: (file) => attachTo(loaded.obj, file),
      hasProbes: (file) => hasRubyGcProbes(file, GC_PROBES.map((p) => p.name), GC_PROVIDER),
      log,
    });
    if (system) rubies.pin(system);
    if (hasBpfCookie()) {
      rubies.scan();
      timer = setInterval(() => {
        try {
          rubies!.scan();
        } catch (err) {
          log(`looking for rubies failed: ${(err as Error).message}`);
        }
      }, RUBY_SCAN_MS);
    }
  } catch (err) {
    if (timer) clearInterval(timer);
    rubies?.close();
    loaded.obj.close();
    throw err;
  }
  const hists = loaded.obj.map('hists').typed(scalarLayout('u32'), gcGen.gc_hist_layout);
  const comms = new Map<number, string>();
  const procs = new Map<number, RubyProcess>();
  const sums = { mark: 0, sweep: 0 };
  return {
    tool: 'gcstat',
    path: loaded.path.name,
    lost: lostOf(loaded),
    close: () => {
      if (timer) clearInterval(timer);
      rubies!.close();
      loaded.obj.close();
    },
    collect() {
      for (const [pid, e] of drainGcStats(loaded.obj, comms)) {
        let p = procs.get(pid);
        if (!p) procs.set(pid, (p = { comm: '', gcs: 0 }));
        p.gcs += e.mark.count;
        sums.mark += e.mark.total_ns;
        sums.sweep += e.sweep.total_ns;
      }
      comms.clear(); // drainGcStats' names: the name now is read below
      const rss: Sample[] = [];
      const gcs: Sample[] = [];
      for (const pid of [...procs.keys()].sort((a, b) => a - b)) {
        const r = readRss(pid);
        if (!r) { procs.delete(pid); continue; } // gone: its series go too
        const p = procs.get(pid)!;
        // The name now (a process may rename itself after its first GC).
        p.comm = readComm(pid);
        const labels = { pid: String(pid), comm: p.comm };
        rss.push({ labels, value: r.rss });
        gcs.push({ labels, value: p.gcs });
      }
      const histograms = (['mark', 'sweep'] as const).map((phase) => {
        const slots = hists.lookup({ value: phase === 'mark' ? gcGen.ENUMS.GC_MARK : gcGen.ENUMS.GC_SWEEP })?.slots ?? [];
        return { labels: { phase }, ...log2Buckets(slots, 1e-6, GC_MIN_SLOTS), sum: sums[phase] / 1e9 };
      });
      return [
        { name: 'rbtrace_ruby_gc_seconds', type: 'histogram', unit: 'seconds', help: 'Duration of Ruby GC phases (USDT gc__mark/gc__sweep), every ruby on the host.', histograms },
        { name: 'rbtrace_ruby_gcs', type: 'counter', help: 'Garbage collections (GC mark phases ended) of each ruby process, since the exporter first saw it collect.', samples: gcs },
        { name: 'rbtrace_ruby_rss_bytes', type: 'gauge', unit: 'bytes', help: 'Resident set size (VmRSS) of each ruby process seen doing GC.', samples: rss },
        {
          name: 'rbtrace_ruby_binary_processes', type: 'gauge',
          help: 'Files holding a Ruby interpreter (libruby, or a static ruby) whose GC probes are attached, by path and device:inode, with how many processes run each.',
          samples: rubies!.list().map((b) => ({ labels: { binary: b.file.name, inode: b.key }, value: b.pids })),
        },
      ];
    },
  };
};

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

export const SOURCES: Record<SourceName, SourceFactory> = {
  syscount: syscountSource,
  synqueue: synqueueSource,
  execsnoop: execsnoopSource,
  gcstat: gcstatSource,
  tcpretrans: tcpretransSource,
};
