// Bounded label cardinality: each metric family admits at most `limit`
// series (label sets); a series seen when the family is full is left out of
// the output and counted once in rbtrace_exporter_dropped_series_total. A
// series that goes away (listener closed, process ended) frees its slot.
import type { Labels, Sample } from './exposition.js';

/** A series' identity in its family: the source's key, else its label values (names are the family's, in a fixed order). */
export function seriesKey(series: { labels: Labels; key?: string }): string {
  if (series.key !== undefined) return series.key;
  let k = '';
  for (const name in series.labels) k += series.labels[name] + '\u0000';
  return k;
}

/** Dropped keys are remembered up to this many per family so each is counted once; past it, each sighting counts. */
const REMEMBER_DROPPED = 100_000;

export class SeriesLimiter {
  private readonly admitted = new Set<string>();
  private readonly droppedKeys = new Set<string>();
  /** Series refused since start (a counter). */
  dropped = 0;

  constructor(readonly limit: number) {}

  /**
   * Of the series present now, which may be shown: those admitted before
   * first (so a shown series never disappears because of a newcomer), then
   * newcomers while there is room. Series absent now are forgotten.
   */
  filter<T extends { labels: Labels; key?: string }>(present: T[]): T[] {
    const keyed = present.map((p) => ({ p, key: seriesKey(p) }));
    const now = new Set(keyed.map((k) => k.key));
    for (const k of this.admitted) if (!now.has(k)) this.admitted.delete(k);
    for (const k of this.droppedKeys) if (!now.has(k)) this.droppedKeys.delete(k);
    const shown: T[] = [];
    for (const { p, key } of keyed) {
      if (this.admitted.has(key)) { shown.push(p); continue; }
      if (this.admitted.size < this.limit) {
        this.admitted.add(key);
        shown.push(p);
        continue;
      }
      if (!this.droppedKeys.has(key)) {
        this.dropped++;
        if (this.droppedKeys.size < REMEMBER_DROPPED) this.droppedKeys.add(key);
      }
    }
    return shown;
  }
}

/**
 * Counters of a family with many possible series (one per Ruby method),
 * shown as at most `limit - 1` series of their own plus one summing the
 * rest. Series get room by count, the largest first, while there is room;
 * then they keep it: a shown series never moves into the rest, so it and
 * the rest only grow, as counters must. The series summed into the rest
 * are the family's dropped series.
 */
export class TopCounters {
  private readonly shown = new Set<string>();
  /** Distinct series summed into the rest, at the last select(). */
  dropped = 0;

  constructor(readonly limit: number) {}

  /** `all`: every series' total now (series never go away: their counts only grow). */
  select(all: { key: string; labels: Labels; value: number }[], rest: Labels): Sample[] {
    const newcomers = all.filter((s) => !this.shown.has(s.key)).sort((a, b) => b.value - a.value);
    for (const s of newcomers) {
      if (this.shown.size >= this.limit - 1) break;
      this.shown.add(s.key);
    }
    const out: Sample[] = [];
    let other = 0;
    let dropped = 0;
    for (const s of all) {
      if (this.shown.has(s.key)) out.push({ labels: s.labels, value: s.value, key: s.key });
      else { other += s.value; dropped++; }
    }
    this.dropped = dropped;
    if (dropped) out.push({ labels: rest, value: other, key: '\u0000rest' });
    return out;
  }
}
