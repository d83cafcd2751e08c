// synqueue's collector: the only code that reads its maps and ring buffer
// (typed from the skeleton). One collect() call, one typed report
// (SynqueueReport) for the interval since the last call, for the command's
// views and the exporter (metrics.ts) alike. The listeners come from the
// table (listener-table.ts: the kernel walks, steered through walkMaps());
// here they are joined with what the probes counted per listener (keyed by
// struct sock address: the probes fire in every namespace), their owners'
// containers, and the filters.
import { SocketOwners } from '../../core/linux/sockowners.js';
import { cgroupOfPid, cgroupUnder, containerOf } from '../../core/linux/cgroup.js';
import type { Netns } from '../../core/linux/netns.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { TypedMap } from '../../core/bpf/maps.js';
import { sq_event_layout as eventLayout, ENUMS, type ListenerKey, type ListenerStats, type SKELETON } from '../../generated/synqueue.js';
import {
  AF_INET6, QUIET, buildRow, formatAddr, formatListener, quietRowHolds, sameRow,
  type Counted, type EventRecord, type ListenerRow, type NetnsSummary, type SynqueueReport, type SynSysctls,
} from './model.js';
import { ListenerTable, type WalkMaps } from './listener-table.js';
import { NETSTAT, RECHECK_INTERVALS } from './namespaces.js';
import type { Entry, NsTally, Owner } from './entry.js';
import type { Sight, WalkLinks } from './probe.js';
import { dropReasonName } from './proc.js';

type Obj = BpfObject<typeof SKELETON>;

/** The maps the listener table steers its walks with (only with the open-files walk, as the kernel has one). */
function walkMaps(obj: Obj, files: boolean, byAddress: boolean): WalkMaps | undefined {
  if (!files) return undefined;
  const walk = obj.typedMap('walk');
  const last = obj.typedMap('last');
  const ownerless = obj.typedMap('ownerless');
  return {
    startWalk: (gen, full) => walk.update({ value: 0 }, { gen, full: full ? 1 : 0, seen: 0, reported: 0 }),
    walkCounts: () => walk.lookup({ value: 0 }),
    forgetLast: (sk) => void last.delete({ sk }),
    ...(byAddress ? {
      ownerless: { room: ownerless.map.maxEntries, put: (sk, hint) => ownerless.update({ sk }, hint), delete: (sk) => ownerless.delete({ sk }) },
    } : {}),
  };
}

/** Drain the per-CPU stats map (per-CPU values folded by src/core/bpf/maps.ts: *_max by max, the rest summed): listener -> counts since the last drain. */
function drainStats(stats: TypedMap<ListenerKey, ListenerStats>): Map<bigint, Counted> {
  const out = new Map<bigint, Counted>();
  for (const [k, s] of stats.drain()) {
    out.set(k.sk, {
      enqueues: s.enqueues, overflows: s.overflows, drops: s.drops, syncookies: s.syncookies, synackRetrans: s.synack_retrans,
      syns: s.syns, freed: s.freed, acceptMax: s.accept_max, synMax: s.syn_max,
    });
  }
  return out;
}

export interface CollectorOptions {
  /** --netns: only these namespaces. */
  netns?: Netns[];
  ports?: Set<number>;
  family?: 'ipv4' | 'ipv6';
  /** -p / -- CMD: owners a listener must have (asked each interval). */
  wantedPids?: () => Set<number> | undefined;
  /** --cgroup: the owner's cgroup v2 path must be this directory or below (as /proc/PID/cgroup shows paths). */
  cgroup?: string;
  /** Keep each selected listener's label (for --hist and --events; 10,000 strings not worth making otherwise). */
  labels?: boolean;
}

/** One --hist histogram: a listener's accept queue length at each enqueue, per accept limit. */
export interface QueueHistogram {
  listener: string;
  limit: number;
  slots: number[];
}

export class SynqueueCollector {
  private readonly table: ListenerTable;
  private readonly stats: TypedMap<ListenerKey, ListenerStats>;
  /** Whether the open-files walk gives owners (else a /proc/PID/fd scan does). */
  private readonly files: boolean;
  /** entries in report order (port, address, namespace); rebuilt only when listeners come or go. */
  private ordered: Entry[] = [];
  private readonly owners = new SocketOwners(1000);
  private readonly containers = new Map<number, { cgroup: string | undefined; container: string | null }>();
  private readonly tallies = new Map<number, NsTally>();
  private collects = 0;
  private readonly prevScratch = { acceptQueue: 0, synQueue: 0, skDrops: 0 };
  /** The last report's entries (selected, in order) and rows, and the sysctls they were built with. */
  private last: { mine: Entry[]; rows: ListenerRow[]; sysctls: Map<number, SynSysctls> } | undefined;

  /** `links` and `sight`: probe.ts's walkLinks() and sightOf() of the same load. */
  constructor(private readonly obj: Obj, links: WalkLinks, private readonly sight: Sight, private readonly opts: CollectorOptions = {}) {
    this.files = links.files !== undefined;
    this.table = new ListenerTable(links, walkMaps(obj, this.files, links.ownerless !== undefined), opts.netns);
    this.stats = obj.typedMap('stats');
    this.table.snapshot();
  }

  /** How the table's walks went (for -v and tests). */
  get walks(): ListenerTable['walks'] {
    return this.table.walks;
  }

  /** What --hist and --events call a listener, once a report selected it. */
  labelOf(sk: bigint): string | undefined {
    return this.table.get(sk)?.label;
  }

  private selected(s: Entry): boolean {
    if (this.opts.ports && !this.opts.ports.has(s.port)) return false;
    if (this.opts.family === 'ipv4' && s.family === AF_INET6) return false;
    if (this.opts.family === 'ipv6' && s.family !== AF_INET6) return false;
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
    for (const e of this.table.all()) {
      if (e.owner) pids.add(e.owner.pid);
      if (e.space) spaces.add(e.space);
    }
    for (const pid of this.containers.keys()) if (!pids.has(pid)) this.containers.delete(pid);
    for (const [inode, t] of this.tallies) if (!spaces.has(t)) this.tallies.delete(inode);
  }

  /** The owner's cgroup and container, looked up again only when the owner changed. */
  private containerFor(e: Entry, owner: Owner | null): Entry['ctr'] {
    if (e.ctrOwner !== owner || (owner && e.ctr === undefined)) {
      e.ctrOwner = owner;
      e.ctr = owner ? this.containerOf(owner.pid) : undefined;
    }
    return e.ctr;
  }

  /** A listener's row for this interval (its counts taken), the same object as before when nothing in it changed. */
  private refreshRow(e: Entry, owner: Owner | null): ListenerRow {
    const counts = e.counts;
    e.counts = QUIET;
    const prev = this.prevScratch;
    prev.acceptQueue = e.prevAcceptQueue;
    prev.synQueue = e.prevSynQueue;
    prev.skDrops = e.prevSkDrops;
    const before = e.fresh ? undefined : prev;
    const sys = e.space!.sys!;
    const container = this.containerFor(e, owner)?.container ?? null;
    const { perSyn, seesEnqueues } = this.sight;
    // A steady node's rows mostly stay as they were: keep the row object
    // (no new one per listener per interval; views keep work by identity).
    if (!quietRowHolds(e, before, counts, e.row, perSyn, sys, seesEnqueues, owner, container)) {
      const row = buildRow(e, before, counts, perSyn, sys, seesEnqueues, owner, container);
      if (e.row === undefined || !sameRow(e.row, row)) e.row = row;
    }
    return e.row!;
  }

  /** Its namespace's tally, made on first use with this interval's sysctls. */
  private tallyOf(netns: number, sysctls: Map<number, SynSysctls>): NsTally {
    let t = this.tallies.get(netns);
    if (!t) this.tallies.set(netns, (t = { sys: sysctls.get(netns), rows: 0 }));
    return t;
  }

  /** The report for the interval since the last call. */
  collect(final = false): SynqueueReport {
    const snap = this.table.snapshot();
    const counted = drainStats(this.stats);
    this.table.catchUnknown(counted.keys());
    const changed = this.table.takeChanged();
    if (changed) {
      // A steady node keeps its listeners: sort them when that changes, not every interval.
      this.ordered = [...this.table.all()].sort((a, b) => a.port - b.port || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0) || a.netns - b.netns);
    }
    const files = this.files;
    const pids = this.opts.wantedPids?.();
    // The few listeners with counts get them on their entry (a lookup per
    // counted listener, not per row). They count as touched: their rows
    // change now, and again next interval (back to quiet).
    for (const [sk, c] of counted) {
      const e = this.table.get(sk);
      if (e) {
        e.counts = c;
        this.table.touch(e);
      }
    }
    let rows: ListenerRow[];
    const last = this.last;
    if (files && !changed && pids === undefined && this.opts.cgroup === undefined && last !== undefined && sameSysctls(last.sysctls, snap.sysctls)) {
      // A steady node: only the rows of listeners a record or the probes
      // touched can change; the other ten thousand stay as they were, rows,
      // tallies and all.
      let moved = false;
      this.table.forEachTouched((e) => {
        if (!this.selected(e)) return;
        const row = e.row;
        if (this.refreshRow(e, e.owner) !== row) moved = true;
      });
      rows = moved ? last.mine.map((e) => e.row!) : last.rows;
      this.last = { mine: last.mine, rows, sysctls: snap.sysctls };
    } else {
      const mine: Entry[] = [];
      for (const e of this.ordered) if (this.selected(e)) mine.push(e);
      if (!files) this.owners.update(mine.map((e) => e.ino));
      for (const [inode, t] of this.tallies) {
        t.rows = 0;
        t.sys = snap.sysctls.get(inode);
      }
      rows = [];
      const kept: Entry[] = [];
      for (const e of mine) {
        e.space ??= this.tallyOf(e.netns, snap.sysctls);
        const owner = files ? e.owner : this.owners.get(e.ino);
        if (pids && (!owner || !pids.has(owner.pid))) {
          e.counts = QUIET;
          continue;
        }
        if (this.opts.cgroup !== undefined && !cgroupUnder(this.containerFor(e, owner)?.cgroup, this.opts.cgroup)) {
          e.counts = QUIET;
          continue;
        }
        rows.push(this.refreshRow(e, owner));
        kept.push(e);
        e.space.rows++;
        if (this.opts.labels && e.label === undefined) {
          e.label = formatListener(e.addr, e.port, e.family) + (e.netns !== this.table.ownNetns ? ` (netns ${e.netns})` : '');
        }
      }
      this.last = { mine: kept, rows, sysctls: snap.sysctls };
    }
    if (++this.collects % RECHECK_INTERVALS === 0) this.prune();

    const namespaces: NetnsSummary[] = [];
    const total: Record<string, number> = Object.fromEntries(NETSTAT.map((n) => [n, 0]));
    for (const [inode, st] of this.table.namespaces.seen()) {
      const netstat = snap.deltas.get(inode)!;
      for (const n of NETSTAT) total[n] += netstat[n];
      namespaces.push({ netns: inode, name: st.name, pid: st.pid, listeners: this.tallies.get(inode)?.rows ?? 0, netstat });
    }
    return { time: new Date().toISOString(), attach: this.sight.attach, ...(final ? { final: true } : {}), listeners: rows, netstat: total, namespaces };
  }

  /**
   * --hist on exit: each selected listener's accept queue length at each
   * enqueue, per limit (per-CPU slots summed by src/core/bpf/maps.ts).
   */
  histograms(): QueueHistogram[] {
    const out: QueueHistogram[] = [];
    for (const [k, v] of this.obj.typedMap('hist').entries()) {
      const listener = this.labelOf(k.sk); // only listeners the filters selected
      if (listener !== undefined) out.push({ listener, limit: k.limit, slots: v.slots });
    }
    return out;
  }

  /**
   * --events: a ring-buffer record as an event line, or undefined when the
   * filters leave it out. With --netns or --cgroup (`narrowed`) an event
   * counts once a report selected its listener (they select by namespace
   * and owner, which only the table knows).
   */
  event(rec: DataView, wallTimeOf: (monoNs: number) => number, narrowed: boolean): EventRecord | undefined {
    const e = eventLayout.decode(rec);
    const port = e.lport;
    if (this.opts.ports && !this.opts.ports.has(port)) return undefined;
    if (this.opts.family === 'ipv4' && e.family === AF_INET6) return undefined;
    if (this.opts.family === 'ipv6' && e.family !== AF_INET6) return undefined;
    const label = this.labelOf(e.sk);
    if (narrowed && label === undefined) return undefined;
    const laddr = formatAddr(e.family, e.laddr);
    return {
      time: new Date(wallTimeOf(e.ts_ns)).toISOString(),
      event: e.kind === ENUMS.SQ_OVERFLOW ? 'overflow' : 'drop',
      listener: label ?? formatListener(laddr, port, e.family),
      addr: laddr,
      port,
      remote_addr: formatAddr(e.family, e.raddr),
      remote_port: e.rport,
      reason: e.reason ? dropReasonName(e.reason) : null,
      accept_queue: e.accept_queue,
      accept_limit: e.accept_limit,
      syn_queue: e.syn_queue,
    };
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
