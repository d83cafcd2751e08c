// A tool seen by `rbtrace exporter`: the same probe and collector the tool
// runs from its command, with its readings turned into metric families. Each
// tool that exports metrics has a src/tools/<name>/metrics.ts whose
// SourceFactory the exporter calls; the exporter itself knows no tool's maps.
import type { Loaded } from '../bpf/paths.js';
import type { LoadSpec } from '../tool.js';
import type { AnySkeleton } from '../skeleton/types.js';
import type { Target } from '../target.js';
import type { MetricFamily } from './exposition.js';

export interface MetricSource {
  tool: string;
  /** The attach path that loaded. */
  path: string;
  /** What it runs without (Loaded.degraded()): optional programs left out, and the cost. */
  degraded?: string[];
  /** Read the maps now and return this tool's families. */
  collect(): MetricFamily[];
  /** Events lost by the BPF side (ring buffer full), since load. */
  lost(): number;
  close(): void;
}

/** What a source gets from the exporter. */
export interface SourceContext {
  /** -v lines, prefixed with the tool's name. */
  log(line: string): void;
  /** Every process, or those of --cgroup. */
  scope: Target;
  /** --max-series: per metric family. */
  maxSeries: number;
  /**
   * Load the tool's object for the scope (src/core/tool.ts loadForTarget);
   * the source closes it. `unscoped`: the scope is left to the source (a
   * tool whose probes run where the current task is not the one to filter
   * on, such as synqueue's in softirq).
   */
  load<S extends AnySkeleton>(spec: LoadSpec<S>, opts?: { unscoped?: boolean }): Loaded<S>;
}

export type SourceFactory = (ctx: SourceContext) => MetricSource;
