// The exporter's sources: the list of each tool's SourceFactory
// (src/core/metrics/source.ts). Each tool keeps its own in
// src/tools/<name>/metrics.ts: it loads that tool's probe once and turns
// what its collector reads into metric families. Nothing here knows a map.
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { Target } from '../../core/target.js';
import type { CgroupDir } from '../../core/linux/cgroup.js';
import { syscountSource } from '../syscount/metrics.js';
import { synqueueSource } from '../synqueue/metrics.js';
import { execsnoopSource } from '../execsnoop/metrics.js';
import { gcstatSource } from '../gcstat/metrics.js';
import { biolatencySource } from '../biolatency/metrics.js';
import { runqlatSource } from '../runqlat/metrics.js';
import { tcpretransSource } from '../tcpretrans/metrics.js';
import { rubycallsSource } from '../rubycalls/metrics.js';

export type Source = MetricSource;

export const SOURCE_NAMES = ['syscount', 'synqueue', 'execsnoop', 'gcstat', 'biolatency', 'runqlat', 'tcpretrans', 'rubycalls'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

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
  biolatency: biolatencySource,
  runqlat: runqlatSource,
  tcpretrans: tcpretransSource,
  rubycalls: rubycallsSource,
};
