// One TCP listener as synqueue keeps it between intervals (listeners.ts
// updates it from the walks, collect.ts makes its report row), and its key.
import type { Counted, ListenerRow, Snapshot, SynSysctls } from './model.js';

/**
 * A listener's key: its struct sock address, cut to its low 53 bits so that
 * it is a plain number (cheaper Map keys than strings at 10,000 listeners).
 * Sockets live in the kernel's direct map, whose addresses differ well
 * within those bits (the top ones are the same for all of them).
 */
export const skKey = (dv: DataView, offset: number): number =>
  (dv.getUint32(offset + 4, true) & 0x1fffff) * 4294967296 + dv.getUint32(offset, true);

/**
 * A listener between intervals: its snapshot now, and the figures of the
 * previous snapshot that buildRow() needs. Kept and updated in place, so a
 * steady node costs no new object per listener per interval.
 */
export interface Entry extends Snapshot {
  /** Its owner, when the walk of open files found one (filesLink); kept between intervals. */
  owner: { pid: number; comm: string } | null;
  /** The open-files walk reported it (so the BPF side keeps it in `last`), not the iter/tcp walk. */
  viaFiles: boolean;
  /** The high 32 bits of its struct sock address (skKey keeps 21 of them): `last`'s key. */
  skHi: number;
  /** Not in the previous snapshot (born during the interval). */
  fresh: boolean;
  prevAcceptQueue: number;
  prevSynQueue: number;
  prevSkDrops: number;
  /** Snapshot number that last saw it. */
  gen: number;
  /** The row last reported for it: shown again while its figures do not change (sameRow). */
  row: ListenerRow | undefined;
  /** Its namespace's tally (one object per namespace, kept: no Map lookup per row). */
  space: NsTally;
  /** What the probes counted for it this interval (QUIET: nothing), set from the drained map. */
  counts: Counted;
  /** The owner object its container was looked up for, and that container (a lookup per owner change, not per row). */
  ctrOwner: { pid: number; comm: string } | null;
  ctr: { cgroup: string | undefined; container: string | null } | undefined;
}

/**
 * Per network namespace, across intervals: its sysctls this interval and how
 * many rows it had. Entries point at theirs, because a Map keyed by a
 * namespace inode (above 2^31: not a small integer to V8) costs ~100 ns a
 * lookup, a millisecond per 10,000 rows each time it is asked.
 */
export interface NsTally {
  sys: SynSysctls | undefined;
  rows: number;
}

/** A listener's struct sock address as a map key (8 bytes), from its key's low bits and skHi. */
export function sockKey(sk: number, skHi: number): Uint8Array {
  const key = new DataView(new ArrayBuffer(8));
  key.setUint32(0, sk % 4294967296, true);
  key.setUint32(4, skHi, true);
  return new Uint8Array(key.buffer);
}
