// Bounded label cardinality: each metric family admits at most `limit`
// series (label sets); a series seen when the family is full is left out of
// the output and counted once in rbtrace_exporter_dropped_series_total. A
// series that goes away (listener closed, process ended) frees its slot.
import type { Labels } from './exposition.js';

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
