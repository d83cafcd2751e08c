// gcstat for `rbtrace exporter`: every ruby with USDT (exporter/rubies.ts
// finds them): a histogram of GC phases, collections and RSS per process,
// and gcstat's collection model (collections.ts, as `gcstat --log`): each
// collection counted as it begins, by major/minor and reason read from the
// VM, and its pause (the sum of its steps) observed once it is done. The
// rubies without USDT (vm-rubies.ts) add to the same counters from their
// VM's counters: collections by kind (reason unknown: the counters keep only
// the latest), GCs per process, and GC time, but no pause or phase histogram
// (that needs each collection).
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import { log2Buckets, type Sample } from '../../core/metrics/exposition.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { readComm } from '../../core/linux/process.js';
import { type RubyDiscovery, watchRubies } from '../exporter/rubies.js';
import { fileKey } from '../../core/linux/procfiles.js';
import { RingBuffer } from '../../core/bpf/ringbuf.js';
import { log2Slot } from '../../core/output/histogram.js';
import { CumulativeHistograms } from '../../core/metrics/cumulative.js';
import { SKELETON } from '../../generated/gcstat.js';
import { GcLayouts, PROBES, PROGRAMS, PROVIDER, attachGcProbes, stepsRodata } from './probe.js';
import { decodeStep, drainStats, phaseHist, readRss } from './collect.js';
import { CollectionModel, collectionKind, type Collection } from './collections.js';
import { rubyGcLayout, type RubyGcLayout } from './layout.js';
import { VmRubies, vmLayoutOf } from './vm-rubies.js';

/** Slots of the GC histogram always shown: le up to 2^21 us (about 2 s). */
const GC_MIN_SLOTS = 21;
/** The steps ring buffer (256 KiB, 56-byte steps) is read this often: a ruby collecting in a loop fills it in seconds. */
const STEPS_POLL_MS = 100;

/**
 * Collections by kind and reason, counted as each begins (its first step
 * carries the VM's reading), and the pause of each once it is done.
 */
class CollectionCounts {
  private readonly model = new CollectionModel();
  readonly begun = new Map<string, { labels: Record<string, string>; value: number }>();
  readonly pauses = new CumulativeHistograms(1e-6, GC_MIN_SLOTS);

  step(view: DataView): void {
    const { done, begun } = this.model.add(decodeStep(view));
    if (done) this.pause(done);
    if (!begun) return;
    const kind = collectionKind(begun);
    this.add(kind === 'unknown' ? { kind, reason: 'unknown', major_by: 'unknown' }
      : { kind, reason: begun.gc_by ?? 'none', major_by: begun.major_by ?? 'none' }, 1);
  }

  /** `n` collections of a ruby read through its VM's counters: the kind is known, the reason not (a minor has no major_by). */
  counted(kind: 'major' | 'minor', n: number): void {
    this.add({ kind, reason: 'unknown', major_by: kind === 'major' ? 'unknown' : 'none' }, n);
  }

  private add(labels: { kind: string; reason: string; major_by: string }, n: number): void {
    const key = `${labels.kind}\0${labels.reason}\0${labels.major_by}`;
    const e = this.begun.get(key);
    if (e) e.value += n;
    else this.begun.set(key, { labels, value: n });
  }

  /** Processes gone: their last collection is done. */
  flushGone(alive: (pid: number) => boolean): void {
    for (const c of this.model.flush(alive)) this.pause(c);
  }

  private pause(c: Collection): void {
    this.pauses.add({ kind: collectionKind(c) }, slotsOf(c.pause_ns), 1, c.pause_ns);
  }
}

function slotsOf(ns: number): number[] {
  const slots: number[] = [];
  slots[log2Slot(Math.floor(ns / 1000))] = 1;
  return slots;
}

interface RubyProcess {
  comm: string;
  /** GCs (mark phases) seen since the exporter first saw it. */
  gcs: number;
}

/** Every ruby (exporter/rubies.ts watchRubies): through USDT where it has the probes, else through its VM's counters. */
export const gcstatSource: SourceFactory = ({ log, load, scope }): MetricSource => {
  // No pid: every process that maps the file (USDT semaphores through the kernel's ref counter).
  const loaded = load({
    skeleton: SKELETON,
    rodata: stepsRodata(),
    paths: [{
      name: 'usdt', programs: PROGRAMS, note: `USDT ${PROVIDER}:gc__{mark,sweep}__{begin,end} in every libruby and static ruby run, every process`,
      attach: () => [],
    }],
  });
  let rubies: RubyDiscovery<RubyGcLayout> | undefined;
  let steps: RingBuffer | undefined;
  const counts = new CollectionCounts();
  const layouts = new GcLayouts(loaded.obj);
  const procs = new Map<number, RubyProcess>();
  const addGcs = (pid: number, n: number) => {
    const p = procs.get(pid);
    if (p) p.gcs += n;
    else procs.set(pid, { comm: '', gcs: n });
  };
  const vm = new VmRubies(() => rubies?.processes() ?? [], scope.cgroup, { collections: (kind, n) => counts.counted(kind, n), gcs: addGcs });
  try {
    steps = new RingBuffer(loaded.obj.map('steps'), (rec) => counts.step(rec));
    steps.start(STEPS_POLL_MS, (err) => log(`reading GC steps failed: ${(err as Error).message}`));
    rubies = watchRubies({
      probes: PROBES.map((p) => p.name),
      attach: (file) => {
        const found = rubyGcLayout(file);
        if ('why' in found) log(`${file.name}: collections counted as kind="unknown": ${found.why}`);
        return attachGcProbes(loaded.obj, file, undefined, layouts.cookie(fileKey(file), 'layout' in found ? found.layout : undefined));
      },
      withoutProbes: (file) => vmLayoutOf(file, log),
      log,
    });
    vm.start((err) => log(`reading Ruby VM counters failed: ${(err as Error).message}`));
  } catch (err) {
    vm.close();
    steps?.close();
    loaded.obj.close();
    throw err;
  }
  const lostMap = loaded.obj.map('rbtrace_lost');
  const comms = new Map<number, string>();
  const sums = { mark: 0, sweep: 0 };
  return {
    tool: 'gcstat',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => {
      vm.close();
      steps!.close();
      rubies!.close();
      loaded.obj.close();
    },
    collect() {
      vm.poll(); // the rubies without probes: their counters now
      for (const [pid, e] of drainStats(loaded.obj, comms)) {
        addGcs(pid, e.mark.count);
        sums.mark += e.mark.total_ns;
        sums.sweep += e.sweep.total_ns;
      }
      comms.clear(); // drainStats' names: the name now is read below
      steps!.consume();
      counts.flushGone((pid) => readRss(pid) !== null);
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
        { name: 'rbtrace_ruby_gcs', type: 'counter', help: 'Garbage collections of each ruby process (GC mark phases ended; without USDT, its GC.count gained), since the exporter first saw it collect (a ruby read through its VM counters: since it started, if after the exporter).', samples: gcs },
        {
          name: 'rbtrace_ruby_gc_collections', type: 'counter', monotonic: true,
          help: 'Ruby garbage collections, counted as each begins: kind major or minor, reason (GC.latest_gc_info gc_by) and major_by, read from the VM (kind "unknown" where its layout is not known), every ruby; a ruby without USDT probes adds its GC.stat major/minor_gc_count gains with reason "unknown" (major_by "unknown", "none" for a minor).',
          samples: [...counts.begun.values()].map((e) => ({ labels: e.labels, value: e.value })),
        },
        {
          name: 'rbtrace_ruby_gc_pause_seconds', type: 'histogram', unit: 'seconds',
          help: 'Pause of each Ruby garbage collection (the sum of its mark and sweep steps), by kind, observed when the collection is done (the next one begins, or its process ends); rubies with USDT probes only.',
          histograms: counts.pauses.samples(),
        },
        {
          name: 'rbtrace_ruby_gc_time_seconds', type: 'counter', unit: 'seconds', monotonic: true,
          help: 'GC time of the rubies without USDT probes, read from their VM (GC.stat marking_time and sweeping_time: phase mark and sweep; where Ruby keeps one figure, 3.1 GC.stat time: phase total). Rubies with probes: rbtrace_ruby_gc_seconds_sum.',
          samples: [...vm.timeNs].map(([phase, ns]) => ({ labels: { phase }, value: ns / 1e9 })),
        },
        { name: 'rbtrace_ruby_rss_bytes', type: 'gauge', unit: 'bytes', help: 'Resident set size (VmRSS) of each ruby process seen doing GC (or read through its VM counters).', samples: rss },
        {
          name: 'rbtrace_ruby_binary_processes', type: 'gauge',
          help: 'Files holding a Ruby interpreter (libruby, or a static ruby) by path and device:inode, with how many processes run each; source "usdt": its GC probes are attached, "vm-counters": a libruby without them, whose processes\' VM counters are read.',
          samples: rubies!.list().map((b) => ({ labels: { binary: b.file.name, inode: b.key, source: b.vm ? 'vm-counters' : 'usdt' }, value: b.pids })),
        },
      ];
    },
  };
};
