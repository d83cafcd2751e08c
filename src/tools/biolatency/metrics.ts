// biolatency for `rbtrace exporter --tools biolatency`: block I/O device
// time (issue to completion) as a Prometheus histogram per disk and
// operation, log2 buckets in microseconds, as `rbtrace biolatency -D -F`.
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import type { HistogramSample } from '../../core/metrics/exposition.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { loadSpec } from './probe.js';
import { BiolatencyCollector } from './collect.js';
import { CumulativeHistograms } from '../../core/metrics/cumulative.js';

/** Buckets always shown: le up to 2^20 us (about 1 s), so the series' bucket set is stable. */
const MIN_SLOTS = 20;

export const biolatencySource: SourceFactory = (ctx): MetricSource => {
  // Block completions run in interrupt context, on no particular task: the
  // exporter's --cgroup scope cannot apply, so every disk is measured.
  const loaded = ctx.load(loadSpec({ perDisk: true, perOp: true, queued: false, ms: false, events: false }), { unscoped: true });
  const collector = new BiolatencyCollector(loaded.obj, { perDisk: true, perOp: true });
  const hists = new CumulativeHistograms(1e-6, MIN_SLOTS);
  const lostMap = loaded.obj.map('rbtrace_lost');
  return {
    tool: 'biolatency',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => loaded.obj.close(),
    collect() {
      for (const r of collector.rows()) hists.add({ disk: r.disk ?? '', op: r.op ?? '' }, r.hist, r.count, r.total_ns);
      const histograms: HistogramSample[] = hists.samples();
      return [{
        name: 'rbtrace_block_io_device_seconds', type: 'histogram', unit: 'seconds',
        help: 'Block I/O requests from issue to completion (device time), per disk and operation (read, write, flush, discard).',
        histograms,
      }];
    },
  };
};
