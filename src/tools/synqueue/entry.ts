// One TCP listener as synqueue keeps it between intervals: what the walks
// read (listener-table.ts updates it), and what the report made of it
// (collect.ts). Kept and updated in place, so a steady node costs no new
// object per listener per interval.
import type { Counted, ListenerRow, ListenerSnapshot, SynSysctls } from './model.js';

export type Owner = { pid: number; comm: string };

export interface Entry extends ListenerSnapshot {
  // ---- kept by the listener table (listener-table.ts) ----
  /** Its struct sock address: its key in the table and in every per-listener map (exact: RBTRACE_BIG). */
  readonly sk: bigint;
  /** Its owner, when the walk of open files found one; kept between intervals. */
  owner: Owner | null;
  /** The open-files walk reported it (so the BPF side keeps it in `last`), not the iter/tcp walk. */
  viaFiles: boolean;
  /** Not in the previous snapshot (born during the interval). */
  fresh: boolean;
  prevAcceptQueue: number;
  prevSynQueue: number;
  prevSkDrops: number;
  /** Snapshot number that last saw it. */
  gen: number;

  // ---- kept by the report (collect.ts) ----
  /** The row last reported for it: shown again while its figures do not change (sameRow). */
  row: ListenerRow | undefined;
  /** Its namespace's tally (one object per namespace, kept: no Map lookup per row); set by the first report that selects it. */
  space: NsTally | undefined;
  /** What the probes counted for it this interval (QUIET: nothing), set from the drained map. */
  counts: Counted;
  /** The owner object its container was looked up for, and that container (a lookup per owner change, not per row). */
  ctrOwner: Owner | null;
  ctr: { cgroup: string | undefined; container: string | null } | undefined;
  /** What --hist and --events call it (address:port, and the namespace when not rbtrace's own), once a report selected it. */
  label: string | undefined;
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
