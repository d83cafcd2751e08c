// Histograms for the exporter from a collector's deltas (readings since the
// previous one, as the tools print them): summed per label set, so each
// series is cumulative since the exporter started, as Prometheus wants.
import { labelText, log2Buckets, type HistogramSample, type Labels } from './exposition.js';

interface Acc { labels: Labels; slots: number[]; count: number; sumNs: number }

export class CumulativeHistograms {
  private readonly series = new Map<string, Acc>();

  /** unitSeconds: what one unit of a slot is (1e-6 for usecs). */
  constructor(private readonly unitSeconds: number, private readonly minSlots: number) {}

  add(labels: Labels, slots: number[], count: number, sumNs: number): void {
    const key = labelText(labels);
    let a = this.series.get(key);
    if (!a) this.series.set(key, (a = { labels, slots: [], count: 0, sumNs: 0 }));
    slots.forEach((c, i) => { a.slots[i] = (a.slots[i] ?? 0) + c; });
    a.count += count;
    a.sumNs += sumNs;
  }

  samples(): HistogramSample[] {
    return [...this.series.entries()].map(([key, a]) => ({ labels: a.labels, key, ...log2Buckets(a.slots, this.unitSeconds, this.minSlots), sum: a.sumNs / 1e9 }));
  }
}
