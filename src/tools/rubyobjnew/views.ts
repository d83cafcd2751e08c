// rubyobjnew's views: rows (collect.ts) as a table by class (and site),
// NDJSON records and saved figures. With --sample N the table shows the
// estimate (N times what was seen); JSON keeps what was seen beside it.
// With --window, the share of each row among all allocations seen. Pure.
import { renderTable } from '../../core/output/table.js';
import { sharePct } from '../../core/bpf/usdt-windows.js';
import type { AllocRow } from './collect.js';

export interface ViewMode {
  byProcess: boolean;
  bySite: boolean;
  top: number;
  /** 1 in `sample` allocations looked at. */
  sample: number;
  /** Probes live in time windows only (--window): counts are a sample by time, shares estimate the mix. */
  windows?: boolean;
}

/** All allocations seen (every row, not only those shown): what SHARE is a percent of. */
const totalCount = (all: AllocRow[]): number => all.reduce((a, x) => a + x.count, 0);

export function shownAllocs(rows: AllocRow[], top: number): { shown: AllocRow[]; omitted: number } {
  const sorted = [...rows].sort((a, b) => b.count - a.count || (b.length ?? 0) - (a.length ?? 0)
    || a.class.localeCompare(b.class) || (a.site ?? '').localeCompare(b.site ?? ''));
  const shown = Number.isFinite(top) ? sorted.slice(0, top) : sorted;
  return { shown, omitted: sorted.length - shown.length };
}

export function allocsText(shown: AllocRow[], mode: ViewMode, all: AllocRow[] = shown): string {
  const n = mode.sample;
  const total = totalCount(all);
  const est = n > 1 ? ' (est.)' : '';
  const headers = [...(mode.byProcess ? ['PID'] : []), 'CLASS', 'PROBE', ...(mode.bySite ? ['SITE'] : []), `COUNT${est}`, `LENGTH${est}`, ...(mode.windows ? ['SHARE'] : [])];
  // renderTable escapes cells: class names and paths come from the traced program.
  const body = shown.map((r) => [...(mode.byProcess ? [r.pid ?? 0] : []), r.class, r.probe, ...(mode.bySite ? [r.site ?? '?'] : []),
    r.count * n, r.length !== undefined ? r.length * n : '-', ...(mode.windows ? [`${sharePct(r.count, total).toFixed(1)} %`] : [])]);
  const align = [...(mode.byProcess ? ['right' as const] : []), 'left' as const, 'left' as const, ...(mode.bySite ? ['left' as const] : []),
    'right' as const, 'right' as const, ...(mode.windows ? ['right' as const] : [])];
  return renderTable(headers, body, { align });
}

export function allocsRecord(when: { time: Date; intervalS: number }, shown: AllocRow[], omitted: number, mode: ViewMode, notes: string[],
  all: AllocRow[] = shown, windows?: object): object {
  const total = totalCount(all);
  return {
    time: when.time.toISOString(), interval_s: when.intervalS,
    ...(mode.sample > 1 ? { sample: mode.sample } : {}),
    ...(windows ? { windows } : {}),
    allocations: shown.map((r) => ({
      ...r,
      ...(mode.windows ? { share_pct: sharePct(r.count, total) } : {}),
      ...(mode.sample > 1 ? { estimated_count: r.count * mode.sample, ...(r.length !== undefined ? { estimated_length: r.length * mode.sample } : {}) } : {}),
    })),
    omitted,
    ...(notes.length ? { notes } : {}),
  };
}

export function allocsFigures(rows: AllocRow[]): object {
  return { allocations: rows.map((r) => ({ class: r.class, probe: r.probe, site: r.site, pid: r.pid, count: r.count, length: r.length })) };
}
