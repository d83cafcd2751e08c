// gcstat for `rbtrace exporter`: every ruby with USDT (exporter/rubies.ts
// finds them): a histogram of GC phases, collections and RSS per process.
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { log2Buckets, type Sample } from '../../core/metrics/exposition.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { findRubyBinary } from '../../core/bpf/uprobes.js';
import { hasBpfCookie } from '../../core/bpf/usdt-pids.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { readComm } from '../../core/linux/process.js';
import { RbtraceError } from '../../core/errors.js';
import { RubyDiscovery, hasRubyGcProbes } from '../exporter/rubies.js';
import { SKELETON } from '../../generated/gcstat.js';
import { PROBES, PROGRAMS, PROVIDER, attachGcProbes, checkGcProbes } from './probe.js';
import { drainStats, phaseHist, readRss } from './collect.js';

/** Slots of the GC histogram always shown: le up to 2^21 us (about 2 s). */
const GC_MIN_SLOTS = 21;
/** How often processes are looked at for rubies (a ruby is traced from the first scan after it starts). */
export const RUBY_SCAN_MS = 2000;

interface RubyProcess {
  comm: string;
  /** GCs (mark phases) seen since the exporter first saw it. */
  gcs: number;
}

/**
 * Every ruby with USDT (exporter/rubies.ts): the system's libruby from the
 * start, and each other libruby or static ruby as a process running it is
 * found. Without BPF cookies (before 5.15) a shared library's USDT attaches
 * only per process: there, the system's libruby only, as before.
 */
export const gcstatSource: SourceFactory = ({ log, load }): MetricSource => {
  let system: BinaryFile | undefined;
  try {
    system = findRubyBinary({});
    checkGcProbes(system);
  } catch (err) {
    // No ruby on the host (a Kubernetes node): the containers' rubies are still found.
    // Without BPF cookies they are not, and a ruby installed later is worth another try.
    if (!hasBpfCookie()) throw err instanceof RbtraceError ? new RbtraceError(err.message, { hint: err.hint, transient: true }) : err;
    log(`no system libruby with USDT (${(err as Error).message}): rubies are attached as processes run them`);
    system = undefined;
  }
  // No pid: every process that maps the file (USDT semaphores through the kernel's ref counter).
  const loaded = load({
    skeleton: SKELETON,
    rodata: {},
    paths: [{
      name: 'usdt', programs: PROGRAMS, note: `USDT ${PROVIDER}:gc__{mark,sweep}__{begin,end} in every libruby and static ruby run, every process`,
      attach: () => [],
    }],
  });
  let rubies: RubyDiscovery | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    rubies = new RubyDiscovery({
      attach: (file) => {
        checkGcProbes(file);
        return attachGcProbes(loaded.obj, file);
      },
      hasProbes: (file) => hasRubyGcProbes(file, PROBES.map((p) => p.name), PROVIDER),
      log,
    });
    if (system) rubies.pin(system);
    if (hasBpfCookie()) {
      rubies.scan();
      timer = setInterval(() => {
        try {
          rubies!.scan();
        } catch (err) {
          log(`looking for rubies failed: ${(err as Error).message}`);
        }
      }, RUBY_SCAN_MS);
    }
  } catch (err) {
    if (timer) clearInterval(timer);
    rubies?.close();
    loaded.obj.close();
    throw err;
  }
  const lostMap = loaded.obj.map('rbtrace_lost');
  const comms = new Map<number, string>();
  const procs = new Map<number, RubyProcess>();
  const sums = { mark: 0, sweep: 0 };
  return {
    tool: 'gcstat',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => {
      if (timer) clearInterval(timer);
      rubies!.close();
      loaded.obj.close();
    },
    collect() {
      for (const [pid, e] of drainStats(loaded.obj, comms)) {
        let p = procs.get(pid);
        if (!p) procs.set(pid, (p = { comm: '', gcs: 0 }));
        p.gcs += e.mark.count;
        sums.mark += e.mark.total_ns;
        sums.sweep += e.sweep.total_ns;
      }
      comms.clear(); // drainStats' names: the name now is read below
      const rss: Sample[] = [];
      const gcs: Sample[] = [];
      for (const pid of [...procs.keys()].sort((a, b) => a - b)) {
        const r = readRss(pid);
        if (!r) { procs.delete(pid); continue; } // gone: its series go too
        const p = procs.get(pid)!;
        // The name now (a process may rename itself after its first GC).
        p.comm = readComm(pid);
        const labels = { pid: String(pid), comm: p.comm };
        rss.push({ labels, value: r.rss });
        gcs.push({ labels, value: p.gcs });
      }
      const histograms = (['mark', 'sweep'] as const).map((phase) =>
        ({ labels: { phase }, ...log2Buckets(phaseHist(loaded.obj, phase), 1e-6, GC_MIN_SLOTS), sum: sums[phase] / 1e9 }));
      return [
        { name: 'rbtrace_ruby_gc_seconds', type: 'histogram', unit: 'seconds', help: 'Duration of Ruby GC phases (USDT gc__mark/gc__sweep), every ruby on the host.', histograms },
        { name: 'rbtrace_ruby_gcs', type: 'counter', help: 'Garbage collections (GC mark phases ended) of each ruby process, since the exporter first saw it collect.', samples: gcs },
        { name: 'rbtrace_ruby_rss_bytes', type: 'gauge', unit: 'bytes', help: 'Resident set size (VmRSS) of each ruby process seen doing GC.', samples: rss },
        {
          name: 'rbtrace_ruby_binary_processes', type: 'gauge',
          help: 'Files holding a Ruby interpreter (libruby, or a static ruby) whose GC probes are attached, by path and device:inode, with how many processes run each.',
          samples: rubies!.list().map((b) => ({ labels: { binary: b.file.name, inode: b.key }, value: b.pids })),
        },
      ];
    },
  };
};
