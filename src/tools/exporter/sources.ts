// The exporter's sources: one per tool (src/core/metrics/source.ts), each
// loading that tool's BPF object once and turning what the tool's maps hold
// into metric families. A tool converted to the one shape keeps its source in
// src/tools/<name>/metrics.ts (syscount's); the rest are still here.
import type { Loaded } from '../../core/paths.js';
import { RingBuffer, lostEvents } from '../../core/ringbuf.js';
import { possibleCpus } from '../../core/maps.js';
import { errnoName } from '../../core/names.js';
import { ListenerSeries } from './listeners.js';
import { syscountSource } from '../syscount/metrics.js';
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { ATTACH_PATHS as SYNQUEUE_PATHS, ENQUEUE_PROGRAMS, PER_SYN } from '../synqueue.js';
import { SynqueueCollector, iteratorLinks } from '../synqueue/collect.js';
import { Target } from '../../core/target.js';
import type { CgroupDir } from '../../core/cgroup.js';
import { SYSCALL_PATHS as EXEC_PATHS } from '../execsnoop.js';
import { gcstatSource } from '../gcstat/metrics.js';
import * as synqueueGen from '../../generated/synqueue.js';
import * as execGen from '../../generated/execsnoop.js';

export type Source = MetricSource;

export const SOURCE_NAMES = ['syscount', 'synqueue', 'execsnoop', 'gcstat'] as const;
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
};
