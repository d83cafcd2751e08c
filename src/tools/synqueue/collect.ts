// synqueue's collector: one call, one typed report (SynqueueReport) for the
// interval since the last call. Reused by anything that wants the figures
// without the views (the exporter). The listeners come from the table
// (listeners.ts: the kernel walks); here they are joined with what the
// probes counted per listener (keyed by struct sock address: the probes fire
// in every namespace), their owners' containers, and the filters.
import { SocketOwners } from '../../core/sockowners.js';
import { cgroupOfPid, cgroupUnder, containerOf } from '../../core/cgroup.js';
import { possibleCpus, type BpfMap } from '../../core/maps.js';
import { listener_stats_layout as statsLayout } from '../../generated/synqueue.js';
import {
  AF_INET6, QUIET, buildRow, emptyCounted, formatListener, quietRowHolds, sameRow,
  type Counted, type ListenerRow, type NetnsSummary, type Snapshot, type SynqueueReport, type SynSysctls,
} from './model.js';
import { ListenerTable, NETSTAT, RECHECK_INTERVALS, type TableOptions } from './listeners.js';
import { skKey, type Entry, type NsTally } from './entry.js';

export { NETSTAT, iteratorLinks } from './listeners.js';

export interface CollectorOptions extends TableOptions {
  statsMap: BpfMap;
  /** The attach path's name (goes into each report). */
  attach: string;
  /** Whether the path sees every SYN (fentry, kprobe). */
  perSyn: boolean;
  /** Whether the path sees each enqueue. */
  seesEnqueues: boolean;
  ports?: Set<number>;
  family?: 'ipv4' | 'ipv6';
  /** -p / -- CMD: owners a listener must have (asked each interval). */
  wantedPids?: () => Set<number> | undefined;
  /** --cgroup: the owner's cgroup v2 path must be this directory or below (as /proc/PID/cgroup shows paths). */
  cgroup?: string;
  /** Keep `labels` (for --hist and --events; 10,000 strings not worth making otherwise). */
  labels?: boolean;
}

export class SynqueueCollector {
  private readonly table: ListenerTable;
  /** entries in report order (port, address, namespace); rebuilt only when listeners come or go. */
  private ordered: Entry[] = [];
  private readonly owners = new SocketOwners(1000);
  private readonly containers = new Map<number, { cgroup: string | undefined; container: string | null }>();
  private collects = 0;
  private readonly prevScratch = { acceptQueue: 0, synQueue: 0, skDrops: 0 };
  /** The last report's entries (selected, in order) and rows, and the sysctls they were built with. */
  private last: { mine: Entry[]; rows: ListenerRow[]; sysctls: Map<number, SynSysctls> } | undefined;

  constructor(private readonly o: CollectorOptions) {
    this.table = new ListenerTable(o);
    this.table.snapshot();
  }

  /** sk -> the label views use for it (--hist, --events): address:port, and the namespace when not rbtrace's own. */
  get labels(): Map<number, string> {
    return this.table.labels;
  }

  /** How the table's walks went (for -v and tests). */
  get walks(): ListenerTable['walks'] {
    return this.table.walks;
  }

  private selected(s: Snapshot): boolean {
    if (this.o.ports && !this.o.ports.has(s.port)) return false;
    if (this.o.family === 'ipv4' && s.family === AF_INET6) return false;
    if (this.o.family === 'ipv6' && s.family !== AF_INET6) return false;
    return true;
  }

  /** The owner's cgroup and container, cached per pid (a process does not change container). */
  private containerOf(pid: number): { cgroup: string | undefined; container: string | null } {
    let c = this.containers.get(pid);
    if (!c) {
      const cgroup = cgroupOfPid(pid);
      c = { cgroup, container: containerOf(cgroup) };
      this.containers.set(pid, c);
    }
    return c;
  }

  /** Let go of containers of owners no listener has, and tallies of namespaces no listener is in. */
  private prune(): void {
    const pids = new Set<number>();
    const spaces = new Set<NsTally>();
    for (const e of this.table.entries.values()) {
      if (e.owner) pids.add(e.owner.pid);
      spaces.add(e.space);
    }
    for (const pid of this.containers.keys()) if (!pids.has(pid)) this.containers.delete(pid);
    for (const [inode, t] of this.table.tallies) if (!spaces.has(t)) this.table.tallies.delete(inode);
  }

  /** The owner's cgroup and container, looked up again only when the owner changed. */
  private containerFor(e: Entry, o: { pid: number; comm: string } | null): Entry['ctr'] {
    if (e.ctrOwner !== o || (o && e.ctr === undefined)) {
      e.ctrOwner = o;
      e.ctr = o ? this.containerOf(o.pid) : undefined;
    }
    return e.ctr;
  }

  /** A listener's row for this interval (its counts taken), the same object as before when nothing in it changed. */
  private refreshRow(e: Entry, o: { pid: number; comm: string } | null): ListenerRow {
    const counts = e.counts;
    e.counts = QUIET;
    const prev = this.prevScratch;
    prev.acceptQueue = e.prevAcceptQueue;
    prev.synQueue = e.prevSynQueue;
    prev.skDrops = e.prevSkDrops;
    const before = e.fresh ? undefined : prev;
    const sys = e.space.sys!;
    const container = this.containerFor(e, o)?.container ?? null;
    // A steady node's rows mostly stay as they were: keep the row object
    // (no new one per listener per interval; views keep work by identity).
    if (!quietRowHolds(e, before, counts, e.row, this.o.perSyn, sys, this.o.seesEnqueues, o, container)) {
      const row = buildRow(e, before, counts, this.o.perSyn, sys, this.o.seesEnqueues, o, container);
      if (e.row === undefined || !sameRow(e.row, row)) e.row = row;
    }
    return e.row!;
  }

  /** The report for the interval since the last call. */
  collect(final = false): SynqueueReport {
    const snap = this.table.snapshot();
    const counted = drainStats(this.o.statsMap);
    this.table.catchUnknown(counted.keys());
    const changed = this.table.changed;
    if (changed) {
      // A steady node keeps its listeners: sort them when that changes, not every interval.
      this.ordered = [...this.table.entries.values()].sort((a, b) => a.port - b.port || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0) || a.netns - b.netns);
      this.table.changed = false;
    }
    const files = this.o.filesLink !== undefined;
    const pids = this.o.wantedPids?.();
    // The few listeners with counts get them on their entry (a lookup per
    // counted listener, not per row).
    // They count as touched: their rows change now, and again next interval
    // (back to quiet).
    for (const [sk, c] of counted) {
      const e = this.table.entries.get(sk);
      if (e) {
        e.counts = c;
        this.table.touched.add(e);
      }
    }
    let rows: ListenerRow[];
    const last = this.last;
    if (files && !changed && pids === undefined && this.o.cgroup === undefined && last !== undefined && sameSysctls(last.sysctls, snap.sysctls)) {
      // A steady node: only the rows of listeners a record or the probes
      // touched can change; the other ten thousand stay as they were, rows,
      // tallies and all.
      let moved = false;
      const refresh = (e: Entry): void => {
        if (!this.selected(e)) return;
        const row = e.row;
        if (this.refreshRow(e, e.owner) !== row) moved = true;
      };
      for (const e of this.table.touched) refresh(e);
      for (const e of this.table.touchedBefore) if (!this.table.touched.has(e)) refresh(e);
      rows = moved ? last.mine.map((e) => e.row!) : last.rows;
      this.last = { mine: last.mine, rows, sysctls: snap.sysctls };
    } else {
      const mine: Entry[] = [];
      for (const e of this.ordered) if (this.selected(e)) mine.push(e);
      if (!files) this.owners.update(mine.map((e) => e.ino));
      for (const [inode, t] of this.table.tallies) {
        t.rows = 0;
        t.sys = snap.sysctls.get(inode);
      }
      rows = [];
      const kept: Entry[] = [];
      for (const e of mine) {
        const o = files ? e.owner : this.owners.get(e.ino);
        if (pids && (!o || !pids.has(o.pid))) {
          e.counts = QUIET;
          continue;
        }
        if (this.o.cgroup !== undefined && !cgroupUnder(this.containerFor(e, o)?.cgroup, this.o.cgroup)) {
          e.counts = QUIET;
          continue;
        }
        rows.push(this.refreshRow(e, o));
        kept.push(e);
        e.space.rows++;
        if (this.o.labels && !this.table.labels.has(e.sk)) {
          this.table.labels.set(e.sk, formatListener(e.addr, e.port, e.family) + (e.netns !== this.table.ownNetns ? ` (netns ${e.netns})` : ''));
        }
      }
      this.last = { mine: kept, rows, sysctls: snap.sysctls };
    }
    if (++this.collects % RECHECK_INTERVALS === 0) this.prune();

    const namespaces: NetnsSummary[] = [];
    const total: Record<string, number> = Object.fromEntries(NETSTAT.map((n) => [n, 0]));
    for (const [inode, st] of this.table.spaces) {
      const netstat = snap.deltas.get(inode)!;
      for (const n of NETSTAT) total[n] += netstat[n];
      namespaces.push({ netns: inode, name: st.name, pid: st.pid, listeners: this.table.tallies.get(inode)?.rows ?? 0, netstat });
    }
    return { time: new Date().toISOString(), attach: this.o.attach, ...(final ? { final: true } : {}), listeners: rows, netstat: total, namespaces };
  }
}

/** Whether every namespace's SYN sysctls are as before (the rows' SYN limits depend on them). */
function sameSysctls(a: Map<number, SynSysctls>, b: Map<number, SynSysctls>): boolean {
  if (a.size !== b.size) return false;
  for (const [inode, x] of a) {
    const y = b.get(inode);
    if (!y || y.syncookies !== x.syncookies || y.maxSynBacklog !== x.maxSynBacklog) return false;
  }
  return true;
}

/** Drain the per-CPU stats map: listener -> counts since the last drain. */
function drainStats(ctxMap: BpfMap): Map<number, Counted> {
  const out = new Map<number, Counted>();
  const slot = (statsLayout.size + 7) & ~7;
  for (const [k, v] of ctxMap.drainRaw()) {
    const key = skKey(new DataView(k.buffer, k.byteOffset, k.byteLength), 0);
    const c = emptyCounted();
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    for (let cpu = 0; cpu < possibleCpus(); cpu++) {
      const s = statsLayout.decode(dv, cpu * slot);
      c.enqueues += s.enqueues;
      c.overflows += s.overflows;
      c.drops += s.drops;
      c.syncookies += s.syncookies;
      c.synackRetrans += s.synack_retrans;
      c.syns += s.syns;
      c.freed += s.freed;
      c.acceptMax = Math.max(c.acceptMax, s.accept_max);
      c.synMax = Math.max(c.synMax, s.syn_max);
    }
    out.set(key, c);
  }
  return out;
}

export { skKey };
