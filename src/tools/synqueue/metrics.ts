// synqueue for `rbtrace exporter`: the command's own probe and collector
// (every network namespace with a process in it), each listener's row as
// `rbtrace synqueue` shows it, as nine metric families (exporter/listeners.ts).
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { ListenerSeries } from '../exporter/listeners.js';
import { loadSpec, sightOf, walkLinks } from './probe.js';
import { SynqueueCollector } from './collect.js';

export const synqueueSource: SourceFactory = ({ load, scope, maxSeries }): MetricSource => {
  // Unscoped: --cgroup is applied to each listener's owner in user space (below).
  const loaded = load(loadSpec(), { unscoped: true });
  const collector = new SynqueueCollector(loaded.obj, walkLinks(loaded), sightOf(loaded), {
    // --cgroup: listeners whose owner is in the directory (decided in user
    // space, as `rbtrace synqueue --cgroup` does: its probes run in softirq).
    cgroup: scope.cgroup?.relative,
  });
  collector.collect(); // the first reading sets the baseline
  // Per label set, kept between scrapes, --max-series applied per listener (exporter/listeners.ts).
  const series = new ListenerSeries(maxSeries);
  const lostMap = loaded.obj.map('rbtrace_lost');
  return {
    tool: 'synqueue',
    path: loaded.path.name,
    degraded: loaded.degraded(),
    lost: () => lostEvents(lostMap),
    close: () => loaded.obj.close(),
    collect: () => series.update(collector.collect().listeners),
  };
};
