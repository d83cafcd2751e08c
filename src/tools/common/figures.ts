// Each tool's final figures, as --save writes them and --assert and
// `rbtrace diff` read them: which array holds the rows, what identifies a row
// across runs, which fields are counts, durations (ns), maxima and
// histograms. The tools hand deltas to ctx.report() in these shapes; the
// merging lives in src/core/report. Kept apart from the tools' own files so
// that their changes to the figures stay in one reviewable place.
import type { FigureSchema } from '../../core/report/figures.js';
import { syscallNames } from '../../core/linux/names.js';

export const SYSCOUNT = (opts: { process?: boolean }): FigureSchema => (opts.process
  ? { rows: { array: 'processes', key: ['comm'], noun: 'process name', counts: ['count', 'errors'], durations: ['total_ns'] } }
  : { rows: { array: 'syscalls', key: ['name'], noun: 'syscall', labels: syscallNames(), counts: ['count', 'errors'], durations: ['total_ns'], histograms: { hist: { unit: 'ns' } } } });

/** `functions`: every function mallocstat probes (a closed set of rows for --assert, without -P). */
export const MALLOCSTAT = (opts: { perProcess?: boolean; functions?: readonly string[] }): FigureSchema => ({
  rows: {
    array: 'functions', key: opts.perProcess ? ['comm', 'name'] : ['name'], noun: 'function',
    ...(opts.functions && !opts.perProcess ? { labels: opts.functions } : {}),
    counts: ['count', 'bytes', 'timed'], durations: ['total_ns'], maxima: ['max_ns'],
  },
  top: { histograms: { sizes: { unit: 'bytes' } } },
});

export const STRLAT = (): FigureSchema => ({
  top: {
    counts: ['count', 'dropped', 'stale', 'unmatched'], durations: ['total_ns'], maxima: ['max_ns'],
    histograms: { hist: { unit: 'ns' }, size_hist: { unit: 'arg' } },
  },
});

/** strlat with several functions (--func a,b or a pattern): a row per function. */
export const STRLAT_FUNCTIONS = (): FigureSchema => ({
  rows: {
    array: 'functions', key: ['function'], noun: 'function',
    counts: ['count', 'dropped', 'stale', 'unmatched'], durations: ['total_ns'], maxima: ['max_ns'],
    histograms: { hist: { unit: 'ns' }, size_hist: { unit: 'arg' } },
  },
});

export const GCSTAT = (): FigureSchema => ({
  rows: { array: 'phases', key: ['phase'], noun: 'GC phase', counts: ['count'], durations: ['total_ns'], maxima: ['max_ns'], histograms: { hist: { unit: 'usecs' } } },
  // Collections (gc__mark__begin, or the VM's count), and of them major and minor where the VM's layout is known.
  top: { counts: ['collections', 'major', 'minor'], maxima: ['rss_peak_bytes'] },
});

export const SYNQUEUE = (): FigureSchema => ({
  rows: {
    array: 'listeners', key: ['addr', 'port', 'netns'], noun: 'listener',
    counts: ['overflows', 'drops', 'syncookies', 'synack_retrans', 'enqueued'], maxima: ['accept_queue_max', 'syn_queue_max'],
  },
  primary: 'overflows',
});

/**
 * profile: a row per function (its folded name, kernel ones with "_[k]"):
 * `self`, the samples in which it was the innermost frame (where the CPU
 * was), and `total`, the samples with it anywhere on the stack (counted once
 * per sample, however deep the recursion).
 */
export const PROFILE = (): FigureSchema => ({
  rows: { array: 'functions', key: ['function'], noun: 'function', counts: ['self', 'total'] },
  top: { counts: ['samples'] },
  primary: 'self',
});

export const EXECSNOOP = (): FigureSchema => ({
  rows: { array: 'execs', key: ['comm', 'result'], noun: 'command:result', counts: ['count'] },
});

export const OPENSNOOP = (): FigureSchema => ({
  rows: { array: 'opens', key: ['comm', 'result'], noun: 'command:result', counts: ['count'] },
});

interface PhaseStats { count: number; total_ns: number; max_ns: number }

/** gcstat: one interval's rows (one per pid) summed per phase. */
export function gcstatDelta(rows: { mark: PhaseStats; sweep: PhaseStats; collections: number; major: number | null; minor: number | null; rss_peak_bytes: number | null }[]) {
  const phase = (name: 'mark' | 'sweep') => ({
    phase: name,
    count: rows.reduce((a, r) => a + r[name].count, 0),
    total_ns: rows.reduce((a, r) => a + r[name].total_ns, 0),
    max_ns: rows.reduce((a, r) => Math.max(a, r[name].max_ns), 0),
  });
  const known = rows.every((r) => r.major !== null);
  return {
    collections: rows.reduce((a, r) => a + r.collections, 0),
    ...(known ? { major: rows.reduce((a, r) => a + (r.major ?? 0), 0), minor: rows.reduce((a, r) => a + (r.minor ?? 0), 0) } : {}),
    phases: [phase('mark'), phase('sweep')], rss_peak_bytes: rows.reduce((a, r) => Math.max(a, r.rss_peak_bytes ?? 0), 0) };
}

/** mallocstat: one report (all processes, or one with -P) as rows per function. */
export function mallocstatDelta(
  r: { comm?: string; stats: Map<number, { count: number; bytes: number; timed: number; total_ns: number; max_ns: number }>; sizes: number[] },
  probed: { id: number; name: string; reported: boolean }[],
) {
  const functions = probed.map((p) => {
    const s = r.stats.get(p.id) ?? { count: 0, bytes: 0, timed: 0, total_ns: 0, max_ns: 0 };
    return { name: p.name, comm: r.comm, count: s.count, bytes: s.bytes, ...(p.reported ? { timed: s.timed, total_ns: s.total_ns, max_ns: s.max_ns } : {}) };
  });
  return { functions, sizes: r.sizes };
}

/** biolatency: a row per histogram (disk and operation with -D/-F, else one). */
export const BIOLATENCY = (opts: { milliseconds?: boolean }): FigureSchema => ({
  rows: {
    array: 'hists', key: ['disk', 'op'], noun: 'disk:op',
    counts: ['count', 'bytes'], durations: ['total_ns'], histograms: { hist: { unit: opts.milliseconds ? 'msecs' : 'usecs' } },
  },
});

/** runqlat: a row per histogram (per process name or cgroup with -P/-L/--per-cgroup, else one). */
export const RUNQLAT = (opts: { milliseconds?: boolean }): FigureSchema => ({
  rows: {
    array: 'hists', key: ['comm', 'cgroup'], noun: 'task:cgroup',
    counts: ['count'], durations: ['total_ns'], maxima: ['max_ns'], histograms: { hist: { unit: opts.milliseconds ? 'msecs' : 'usecs' } },
  },
});

/** offcputime: a row per folded stack. */
export const OFFCPUTIME = (): FigureSchema => ({
  rows: { array: 'stacks', key: ['stack'], noun: 'stack', counts: ['count'], durations: ['total_ns'] },
  primary: 'total_ns',
});

/** tcplife: connections closed, and their bytes and lifetimes, per comm. */
export const TCPLIFE = (): FigureSchema => ({
  rows: { array: 'connections', key: ['comm'], noun: 'process name', counts: ['count', 'tx_bytes', 'rx_bytes'], durations: ['duration_ns'] },
});

/** tcpretrans: retransmits per network namespace. */
export const TCPRETRANS = (): FigureSchema => ({
  rows: { array: 'namespaces', key: ['netns'], noun: 'network namespace', counts: ['retrans', 'segs', 'failed', 'synack', 'tlp'] },
});
