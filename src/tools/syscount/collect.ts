// syscount's cumulative figures, read from its maps: shared by the syscount
// tool (which reports differences between two reads) and the exporter (which
// reports them as counters). Kept apart from syscount.ts so the exporter does
// not import the tool's views.
import type { BpfObject } from '../../core/object.js';
import type { TypedMap } from '../../core/maps.js';
import { scalarLayout } from '../../core/layout.js';
import { sc_stats_layout, sc_errno_key_layout, type ScStats, type ScErrnoKey, type SKELETON } from '../../generated/syscount.js';

const u32 = scalarLayout('u32');
const u64 = scalarLayout('u64');

/**
 * Per syscall number, what the kernel has counted since load (per-CPU values
 * summed): the array for numbers within the arch's table, `rare` beyond it.
 * Numbers never called are left out.
 */
export function readSyscallTotals(syscalls: TypedMap<{ value: number }, ScStats>, rare: TypedMap<{ value: number }, ScStats>,
  slots: number): Map<number, ScStats> {
  const now = new Map<number, ScStats>();
  for (let nr = 0; nr < slots; nr++) {
    const v = syscalls.lookup({ value: nr });
    if (v && v.count) now.set(nr, v);
  }
  // The key is the kernel's `long` syscall number cut to 32 bits: read it
  // signed, so a negative number is shown as one (never as 4294967295).
  for (const [k, v] of rare.entries()) now.set(k.value | 0, v);
  return now;
}

/** The maps of a loaded syscount object, typed. */
export function syscountMaps(obj: BpfObject<typeof SKELETON>) {
  return {
    syscalls: obj.map('syscalls').typed(u32, sc_stats_layout),
    rare: obj.map('rare').typed(u32, sc_stats_layout),
    errnos: obj.map('errnos').typed(sc_errno_key_layout, u64) as TypedMap<ScErrnoKey, { value: number }>,
    slots: obj.map('syscalls').maxEntries,
  };
}

/** Failures per (syscall, errno) since load (want_errnos), per-CPU values summed. */
export function readErrnoTotals(errnos: TypedMap<ScErrnoKey, { value: number }>): { nr: number; errno: number; count: number }[] {
  return errnos.entries().map(([k, v]) => ({ nr: k.nr | 0, errno: k.err, count: v.value }));
}
