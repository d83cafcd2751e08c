// runqlat for `rbtrace exporter --tools runqlat`: run-queue latency (a
// runnable task's wait for a CPU) as a Prometheus histogram per cgroup v2
// directory, log2 buckets in microseconds, as `rbtrace runqlat --per-cgroup`.
// The exporter's --max-series bounds the cgroups shown.
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { loadSpec } from './probe.js';
import { RunqlatCollector } from './collect.js';
import { CumulativeHistograms } from '../../core/metrics/cumulative.js';

/** Buckets always shown: le up to 2^20 us (about 1 s). */
const MIN_SLOTS = 20;

export const runqlatSource: SourceFactory = (ctx): MetricSource => {
  // The waiting task is not the current one: --cgroup is runqlat's own
  // filter on the waiting task (rodata), not the exporter's current-task one.
  const loaded = ctx.load(loadSpec({ split: 'cgroup', ms: false, worst: false, cgroup: ctx.scope.cgroup }), { unscoped: true });
  const collector = new RunqlatCollector(loaded.obj, 'cgroup');
  const hists = new CumulativeHistograms(1e-6, MIN_SLOTS);
  const lostMap = loaded.obj.map('rbtrace_lost');
  return {
    tool: 'runqlat',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => loaded.obj.close(),
    collect() {
      for (const r of collector.rows()) hists.add({ cgroup: r.cgroup ?? '' }, r.hist, r.count, r.total_ns);
      return [{
        name: 'rbtrace_runqueue_latency_seconds', type: 'histogram', unit: 'seconds',
        help: 'Time runnable tasks waited on a run queue for a CPU (wakeup or preemption to switch-in), per cgroup v2 directory.',
        histograms: hists.samples(),
      }];
    },
  };
};
