// rubycalls for `rbtrace exporter --tools rubycalls` (never by default: a
// trap into the kernel per C method call of every ruby): calls per
// Class#method of every ruby with USDT, as counters. --max-series bounds
// them: the largest methods get a series of their own while there is room,
// the others are summed into method="other" and counted in
// rbtrace_exporter_dropped_series{family="rbtrace_ruby_method_calls"}.
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { TopCounters } from '../../core/metrics/limit.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { hasBpfCookie } from '../../core/bpf/usdt-pids.js';
import { RbtraceError } from '../../core/errors.js';
import { SKELETON } from '../../generated/rubycalls.js';
import { type RubyDiscovery, watchRubies } from '../exporter/rubies.js';
import { PATH_NOTE, attachCallProbes, callsRodata, probesFor, sizeMaps } from './probe.js';
import { CallsCollector } from './collect.js';

export const rubycallsSource: SourceFactory = ({ log, load, maxSeries }): MetricSource => {
  // Counts only: the entries (no -L), all processes together (no -P).
  const mode = { byProcess: false, latency: false };
  if (!hasBpfCookie()) {
    throw new RbtraceError('rubycalls in the exporter needs BPF cookies (kernel 5.15+): before them, USDT in a shared library attaches only to one process',
      { hint: 'use `rbtrace rubycalls -p PID` on this kernel' });
  }
  const loaded = load({
    skeleton: SKELETON,
    rodata: callsRodata(mode),
    configure: (o) => sizeMaps(o, mode.latency),
    paths: [{ name: 'usdt', programs: probesFor(mode.latency).map((p) => p.program), note: `${PATH_NOTE}, every libruby and static ruby run`, attach: () => [] }],
  });
  let rubies: RubyDiscovery;
  try {
    rubies = watchRubies({ probes: probesFor(true).map((p) => p.name), attach: (file) => attachCallProbes(loaded.obj, file, mode.latency), log });
  } catch (err) {
    loaded.obj.close();
    throw err;
  }
  const collector = new CallsCollector(loaded.obj);
  const totals = new Map<string, { key: string; labels: { method: string; kind: string }; value: number }>();
  const top = new TopCounters(maxSeries);
  const lostMap = loaded.obj.map('rbtrace_lost');
  return {
    tool: 'rubycalls',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => {
      rubies.close();
      loaded.obj.close();
    },
    collect() {
      for (const r of collector.rows()) {
        const key = `${r.kind}\0${r.method}`;
        const t = totals.get(key);
        if (t) t.value += r.count;
        else totals.set(key, { key, labels: { method: r.method, kind: r.kind }, value: r.count });
      }
      const samples = top.select([...totals.values()], { method: 'other', kind: 'other' });
      return [
        {
          name: 'rbtrace_ruby_method_calls', type: 'counter', monotonic: true, limited: { dropped: top.dropped },
          help: 'Calls per Ruby method (Class#method; kind c: written in C, ruby: written in Ruby, seen only in processes with a TracePoint enabled), every ruby; past --max-series the smaller methods are summed in method="other".',
          samples,
        },
        {
          name: 'rbtrace_ruby_method_calls_not_counted', type: 'counter',
          help: 'Calls not counted because the BPF method table (16384 methods) was full.',
          samples: [{ labels: {}, value: collector.dropped() }],
        },
      ];
    },
  };
};
