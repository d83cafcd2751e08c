// execsnoop for `rbtrace exporter`: every exec's result as a counter, from
// the syscall paths' exit programs alone (one small record per exec).
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { resultsLoadSpec } from './probe.js';
import { ExecResults } from './collect.js';

/** Polled often enough that 1 MiB of ring buffer never fills between two scrapes. */
const POLL_MS = 100;

export const execsnoopSource: SourceFactory = ({ load }): MetricSource => {
  const loaded = load(resultsLoadSpec());
  const lostMap = loaded.obj.map('rbtrace_lost');
  const results = new ExecResults(loaded.obj, POLL_MS);
  return {
    tool: 'execsnoop',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => { results.close(); loaded.obj.close(); },
    collect() {
      return [{
        name: 'rbtrace_execs', type: 'counter', help: 'execve/execveat calls completed, by result (ok, or the errno name).',
        samples: [...results.consume()].map(([result, value]) => ({ labels: { result }, value })),
      }];
    },
  };
};
