// The exporter's memory, bounded by V8's own limits. Node's defaults suit a
// short command, not a daemon: V8 grows its young generation (two
// semi-spaces) up to 2 x 16 MiB when allocation is bursty (every scrape is a
// burst), and garbage that holds C memory (response Buffers, koffi views)
// then lives for many scrapes: bench/exporter.mjs --churn saw RSS go from
// 112 to 171 MiB in 2.5 minutes with a flat JS heap, and flat at 90 MiB
// with 1 MiB semi-spaces. The flags must be on node's command line
// (v8.setFlagsFromString after start-up does not resize the heap), so the
// exporter, before it listens or loads anything, replaces itself with the
// same command under those flags: execv, the same pid.
import { execKeepingStdio } from '../../core/ffi/libc.js';

/**
 * 1 MiB semi-spaces: a scavenge every MiB allocated, cheap for the few MiB a
 * scrape leaves alive. The old-space cap is where V8 collects hardest, and
 * past it the process ends (systemd and Kubernetes restart it) rather than
 * growing without bound: 10,000 listeners take about 32 MiB of heap at peak.
 * --optimize-for-size: V8 trades speed for memory where it can; side by side
 * (bench/exporter.mjs --baseline) it took 1.3 MiB less RSS after 10 minutes
 * of the default tools (heap after GC 7.8 against 10.7 MiB) and 2.6 MiB less
 * at 10,000 listeners (peak 98.7 against 106.1), at the same CPU per scrape.
 */
export const DEFAULT_NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=160', '--optimize-for-size'];

/** Set in the environment of the replaced process: never do it twice. */
const MARK = 'RBTRACE_EXPORTER_EXECED';

/**
 * The flags to run under: RBTRACE_EXPORTER_NODE_FLAGS when set (empty: none,
 * Node's defaults), else DEFAULT_NODE_FLAGS.
 */
export function wantedNodeFlags(env = process.env): string[] {
  const given = env.RBTRACE_EXPORTER_NODE_FLAGS;
  return given === undefined ? DEFAULT_NODE_FLAGS : given.split(/\s+/).filter(Boolean);
}

/**
 * Restart this process under the wanted V8 flags unless it runs under them
 * already (or the operator passed heap flags of their own, on node's command
 * line or in NODE_OPTIONS). Returns only when nothing was done, or when the
 * exec failed (then the exporter runs with Node's defaults; `log` says why).
 */
export function boundHeap(log: (line: string) => void): void {
  const flags = wantedNodeFlags();
  if (flags.length === 0 || process.env[MARK] === '1') return;
  // Only the rbtrace command itself: a program running the exporter through
  // the SDK must not be replaced by a restart of itself.
  if (!/(^|\/)rbtrace$/.test(process.argv[1] ?? '') || !process.argv.includes('exporter')) return;
  const own = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (own.some((a) => /^--max-(semi|old)-space-size/.test(a))) return;
  process.env[MARK] = '1';
  const argv = [process.execPath, ...process.execArgv, ...flags, ...process.argv.slice(1)];
  const err = execKeepingStdio(process.execPath, argv);
  log(`could not restart under ${flags.join(' ')} (errno ${-err}): running with Node's default heap sizes`);
}
