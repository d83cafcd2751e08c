// gcstat for `rbtrace exporter`: every ruby with USDT (exporter/rubies.ts
// finds them): a histogram of GC phases, collections and RSS per process,
// and gcstat's collection model (collections.ts, as `gcstat --log`): each
// collection counted as it begins, by major/minor and reason read from the
// VM, and its pause (the sum of its steps) observed once it is done.
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
import { rubyGcLayout } from './layout.js';

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
    const labels = kind === 'unknown' ? { kind, reason: 'unknown', major_by: 'unknown' }
      : { kind, reason: begun.gc_by ?? 'none', major_by: begun.major_by ?? 'none' };
    const key = `${labels.kind}\0${labels.reason}\0${labels.major_by}`;
    const e = this.begun.get(key);
    if (e) e.value++;
    else this.begun.set(key, { labels, value: 1 });
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

/** Every ruby with USDT (exporter/rubies.ts watchRubies). */
export const gcstatSource: SourceFactory = ({ log, load }): MetricSource => {
  // No pid: every process that maps the file (USDT semaphores through the kernel's ref counter).
  const loaded = load({
    skeleton: SKELETON,
    rodata: stepsRodata(),
    paths: [{
      name: 'usdt', programs: PROGRAMS, note: `USDT ${PROVIDER}:gc__{mark,sweep}__{begin,end} in every libruby and static ruby run, every process`,
      attach: () => [],
    }],
  });
  let rubies: RubyDiscovery | undefined;
  let steps: RingBuffer | undefined;
  const counts = new CollectionCounts();
  const layouts = new GcLayouts(loaded.obj);
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
      log,
    });
  } catch (err) {
    steps?.close();
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
      steps!.close();
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
        { name: 'rbtrace_ruby_gcs', type: 'counter', help: 'Garbage collections (GC mark phases ended) of each ruby process, since the exporter first saw it collect.', samples: gcs },
        {
          name: 'rbtrace_ruby_gc_collections', type: 'counter', monotonic: true,
          help: 'Ruby garbage collections, counted as each begins: kind major or minor, reason (GC.latest_gc_info gc_by) and major_by, read from the VM (kind "unknown" where its layout is not known), every ruby.',
          samples: [...counts.begun.values()].map((e) => ({ labels: e.labels, value: e.value })),
        },
        {
          name: 'rbtrace_ruby_gc_pause_seconds', type: 'histogram', unit: 'seconds',
          help: 'Pause of each Ruby garbage collection (the sum of its mark and sweep steps), by kind, observed when the collection is done (the next one begins, or its process ends).',
          histograms: counts.pauses.samples(),
        },
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
