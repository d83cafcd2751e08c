// synqueue's collector: one call, one typed report (SynqueueReport) for the
// interval since the last call. Reused by anything that wants the figures
// without the views (the exporter).
//
// Per interval: every listener of every network namespace (that has a
// process, or those given with --netns) with its owner, in ONE walk of every
// process's open files (iter/task_file, 5.8+), plus one iter/tcp walk of
// rbtrace's own namespace for listeners no process holds (kernel sockets).
// Each namespace's TcpExt counters and SYN sysctls are read from inside it
// (src/core/netns.ts). Where iter/task_file is missing, the iter/tcp program
// is run from inside each namespace in turn (an iterator walks its creator's
// namespace: each walk also passes every other namespace's sockets, ~1.2 ms
// at 10,000 listeners) and owners come from a /proc/PID/fd scan.
// The probes' per-listener counts need no such care: they fire in every
// namespace and are keyed by the listener's struct sock address.
import { createIterator, readIteratorFd, IterBuffer } from '../../core/iter.js';
import { inNetns, listNetns, ownNetnsInode, type Netns } from '../../core/netns.js';
import { readNetCounters } from '../../core/netstat.js';
import { SocketOwners } from '../../core/sockowners.js';
import { cgroupOfPid, cgroupUnder, containerOf } from '../../core/cgroup.js';
import { possibleCpus, type BpfMap } from '../../core/maps.js';
import type { BpfLink } from '../../core/object.js';
import type { Loaded } from '../../core/paths.js';
import {
  SKELETON, listener_info_layout as infoLayout, listener_stats_layout as statsLayout, walk_ctl_layout as walkLayout,
  ownerless_hint_layout as hintLayout,
} from '../../generated/synqueue.js';
import {
  AF_INET6, QUIET, buildRow, emptyCounted, formatAddr, formatListener, quietRowHolds, sameRow,
  type Counted, type ListenerRow, type NetnsSummary, type Snapshot, type SynqueueReport, type SynSysctls,
} from './model.js';
import { readSynSysctls } from './proc.js';

export const NETSTAT = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed'];

export interface CollectorOptions {
  /** iter/tcp (dump_listeners): one namespace's listeners, the creator's. */
  iterLink: BpfLink;
  /** iter/task_file (dump_listener_files): every namespace's held listeners and owners in one walk; absent before 5.8. */
  filesLink?: BpfLink;
  /** With filesLink: its control (struct walk_ctl) and what it last reported of each listener (delta walks). */
  walkMap?: BpfMap;
  lastMap?: BpfMap;
  /** iter/bpf_map_elem over `ownerlessMap` (dump_ownerless): the listeners no process holds, read again by address. */
  ownerlessLink?: BpfLink;
  ownerlessMap?: BpfMap;
  statsMap: BpfMap;
  /** The attach path's name (goes into each report). */
  attach: string;
  /** Whether the path sees every SYN (fentry, kprobe). */
  perSyn: boolean;
  /** Whether the path sees each enqueue. */
  seesEnqueues: boolean;
  /** --netns: only these namespaces (by inode; path used while no process is in one). */
  netns?: Netns[];
  ports?: Set<number>;
  family?: 'ipv4' | 'ipv6';
  /** -p / -- CMD: owners a listener must have (asked each interval). */
  wantedPids?: () => Set<number> | undefined;
  /** --cgroup: the owner's cgroup v2 path must be this directory or below (as /proc/PID/cgroup shows paths). */
  cgroup?: string;
  /** Keep `labels` (for --hist and --events; 10,000 strings not worth making otherwise). */
  labels?: boolean;
}

interface NetnsState {
  name: string | null;
  pid: number | null;
  counters: Map<string, number>;
}


/**
 * A listener's key: its struct sock address, cut to its low 53 bits so that
 * it is a plain number (cheaper Map keys than strings at 10,000 listeners).
 * Sockets live in the kernel's direct map, whose addresses differ well
 * within those bits (the top ones are the same for all of them).
 */
const skKey = (dv: DataView, offset: number): number =>
  (dv.getUint32(offset + 4, true) & 0x1fffff) * 4294967296 + dv.getUint32(offset, true);

/**
 * A listener between intervals: its snapshot now, and the figures of the
 * previous snapshot that buildRow() needs. Kept and updated in place, so a
 * steady node costs no new object per listener per interval.
 */
interface Entry extends Snapshot {
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
interface NsTally {
  sys: SynSysctls | undefined;
  rows: number;
}

/**
 * How many intervals two things that rarely change are trusted before they
 * are looked at again: the list of network namespaces (one readlink per
 * process: 1-2 ms on a busy node), and "no listener in rbtrace's namespace
 * lacks an owner" (one iter/tcp walk: 3-5 ms at 10,000 listeners, as it
 * passes every socket of every namespace).
 */
const RECHECK_INTERVALS = 10;

/** The one key of `walk`. */
const WALK_KEY = new Uint8Array(4);

export class SynqueueCollector {
  private readonly entries = new Map<number, Entry>();
  private gen = 0;
  /** entries in report order (port, address, namespace); rebuilt only when listeners come or go. */
  private ordered: Entry[] = [];
  private changed = true;
  private readonly spaces = new Map<number, NetnsState>();
  private readonly owners = new SocketOwners(1000);
  private readonly containers = new Map<number, { cgroup: string | undefined; container: string | null }>();
  private readonly tallies = new Map<number, NsTally>();
  private collects = 0;
  private readonly scratch = new IterBuffer();
  private readonly prevScratch = { acceptQueue: 0, synQueue: 0, skDrops: 0 };
  /** sk -> the label views use for it (--hist, --events): address:port, and the namespace when not rbtrace's own. */
  readonly labels = new Map<number, string>();
  private readonly ownNetns = ownNetnsInode();
  /** The namespaces of the last listing, and how many snapshots ago it was made. */
  private netnsList: Netns[] | undefined;
  private netnsAge = 0;
  /** Did the last walk of our own namespace find listeners no process holds? And how long ago was it? */
  private ownerless = true;
  private ownAge = 0;
  /** This snapshot skipped the own-namespace walk (what walkOwn needs to do it after all). */
  private ownSkipped: { gen: number; seen: Set<number> } | undefined;
  /** The open-files walk's number (walk_ctl.gen: never 0), and whether the next must report every listener. */
  private walkGen = 0;
  private fullNext = true;
  /**
   * How many open-files walks were delta walks, how many of those had to be
   * followed by a full one, how many were full; how many times rbtrace's
   * own namespace was walked, and how many times its listeners no process
   * holds were read by address instead (for -v and tests).
   */
  readonly walks = { delta: 0, redone: 0, full: 0, ownWalks: 0, ownByAddress: 0 };
  /** What `ownerlessMap` holds (by listener key), and whether it holds every listener the last own walk found. */
  private readonly byAddress = new Map<number, { skHi: number; ino: number; netns: number; port: number }>();
  private byAddressComplete = false;
  /** checkDelta's list, kept between intervals. */
  private readonly untouched: Entry[] = [];
  /**
   * Entries a record updated in this snapshot, and in the one before (whose
   * previous figures moved since): with the listeners counted by the probes,
   * the only rows that can change while no listener comes or goes, owners
   * are only those the walk reports and no sysctl changed (collect()).
   */
  private touched = new Set<Entry>();
  private touchedBefore = new Set<Entry>();
  /** The last report's entries (selected, in order) and rows, and the sysctls they were built with. */
  private last: { mine: Entry[]; rows: ListenerRow[]; sysctls: Map<number, SynSysctls> } | undefined;

  constructor(private readonly o: CollectorOptions) {
    this.snapshot();
  }

  /** The namespaces to walk now: every one with a process (or named), or those of --netns. */
  private namespaces(): Netns[] {
    const all = listNetns();
    if (!this.o.netns) return [...all.values()];
    return this.o.netns.map((n) => all.get(n.inode) ?? n);
  }

  /**
   * namespaces(), listed again only every RECHECK_INTERVALS snapshots or when
   * `stale` (a namespace could not be entered, or a listener came from one
   * not in the list).
   */
  private cachedNamespaces(stale: boolean): Netns[] {
    if (stale || this.netnsList === undefined || ++this.netnsAge >= RECHECK_INTERVALS) {
      this.netnsList = this.namespaces();
      this.netnsAge = 0;
    }
    return this.netnsList;
  }

  /**
   * Update every listener of every namespace to now (entries), and return
   * each namespace's sysctls and counter deltas.
   */
  private snapshot(): { sysctls: Map<number, SynSysctls>; deltas: Map<number, Record<string, number>> } {
    const gen = ++this.gen;
    [this.touchedBefore, this.touched] = [this.touched, this.touchedBefore];
    this.touched.clear();
    const sysctls = new Map<number, SynSysctls>();
    const deltas = new Map<number, Record<string, number>>();
    const seen = new Set<number>();
    if (this.o.filesLink) this.snapshotFiles(gen, sysctls, deltas, seen);
    else for (const ns of this.namespaces()) {
      let got;
      try {
        got = inNetns(ns.path, () => ({
          fd: createIterator(this.o.iterLink),
          counters: readNetCounters('/proc/thread-self/net/netstat'),
          sys: readSynSysctls(),
        }));
      } catch {
        continue; // the namespace went away with its last process
      }
      const { inode, value } = got;
      const data = readIteratorFd(value.fd, this.scratch); // also closes it
      if (seen.has(inode)) continue;
      seen.add(inode);
      this.parse(data, gen, undefined, 'tcp');
      this.noteSpace(ns, inode, value.counters, value.sys, sysctls, deltas);
    }
    for (const inode of this.spaces.keys()) if (!seen.has(inode)) this.spaces.delete(inode);
    for (const [sk, e] of this.entries) {
      if (e.gen !== gen) {
        this.entries.delete(sk);
        this.labels.delete(sk);
        this.changed = true;
        // Gone (or no longer held by any process): the BPF side forgets it
        // too, so that if it comes back it is reported, never taken as known.
        if (e.viaFiles) this.forgetLast(sk, e.skHi);
        else if (this.byAddress.delete(sk)) this.o.ownerlessMap!.deleteRaw(sockKey(sk, e.skHi));
      }
    }
    return { sysctls, deltas };
  }

  private noteSpace(ns: Netns, inode: number, counters: Map<string, number>, sys: SynSysctls,
    sysctls: Map<number, SynSysctls>, deltas: Map<number, Record<string, number>>): void {
    sysctls.set(inode, sys);
    const state = this.spaces.get(inode);
    deltas.set(inode, netstatDelta(state?.counters, counters));
    this.spaces.set(inode, { name: ns.name ?? null, pid: ns.pid ?? null, counters });
  }

  /**
   * One walk of every process's open files for every namespace's listeners
   * and owners, one walk of rbtrace's own namespace for those no process
   * holds, and each namespace's counters read from inside it (no iterator
   * there: cheap). The namespace list is cached (cachedNamespaces); a
   * listener from a namespace not in it makes it listed again at once, and
   * the records are read again, so no listener is missed for an interval.
   * The own-namespace walk runs every interval while it finds ownerless
   * listeners (kernel sockets), else every RECHECK_INTERVALS: a new ownerless
   * listener can take that long to show.
   */
  private snapshotFiles(gen: number, sysctls: Map<number, SynSysctls>, deltas: Map<number, Record<string, number>>, seen: Set<number>): void {
    let relisted = this.netnsList === undefined || this.netnsAge + 1 >= RECHECK_INTERVALS;
    const readCounters = (spaces: Netns[]): boolean => {
      let gone = false;
      for (const ns of spaces) {
        let got;
        try {
          got = inNetns(ns.path, () => ({ counters: readNetCounters('/proc/thread-self/net/netstat'), sys: readSynSysctls() }));
        } catch {
          gone = true; // the namespace went away with its last process, or the pid we knew it by did
          continue;
        }
        if (seen.has(got.inode)) continue;
        seen.add(got.inode);
        this.noteSpace(ns, got.inode, got.value.counters, got.value.sys, sysctls, deltas);
      }
      return gone;
    };
    if (readCounters(this.cachedNamespaces(false)) && !relisted) {
      relisted = true;
      readCounters(this.cachedNamespaces(true));
    }
    // A delta walk reports only listeners that are new or changed; the
    // others are known to be there when its count of listeners passed adds
    // up (checkDelta). It is not used with --netns: the walk passes
    // listeners of namespaces not taken, which user space does not keep.
    const delta = this.o.walkMap !== undefined && !this.fullNext && !this.o.netns;
    const walk = (full: boolean): { foreign: number } => {
      this.startWalk(full);
      const data = readIteratorFd(createIterator(this.o.filesLink!), this.scratch);
      let r = this.parse(data, gen, seen, 'files');
      if (r.foreign > 0 && !relisted && !this.o.netns) {
        relisted = true;
        readCounters(this.cachedNamespaces(true));
        const again = this.parse(data, gen, seen, 'files');
        r = { took: r.took + again.took, foreign: again.foreign };
      }
      return r;
    };
    // Until the records are in, what the BPF side holds may be ahead of us.
    this.fullNext = true;
    if (!delta) {
      walk(true);
      if (this.o.walkMap) this.walks.full++;
    } else {
      this.walks.delta++;
      const r = walk(false);
      if (!this.checkDelta(gen, r.foreign)) {
        this.walks.redone++;
        walk(true);
      }
    }
    this.fullNext = false;
    // Listeners no process holds: found by a walk of our namespace every
    // RECHECK_INTERVALS; in between, those it found are read by address.
    if (++this.ownAge >= RECHECK_INTERVALS || (this.ownerless && !this.byAddressComplete)) this.walkOwn(gen, seen);
    else {
      if (this.ownerless) this.readByAddress(gen, seen);
      this.ownSkipped = { gen, seen };
    }
  }

  /** Number the next open-files walk (walk_ctl), full or delta. */
  private startWalk(full: boolean): void {
    if (!this.o.walkMap) return;
    this.walkGen = this.walkGen >= 0xffffffff ? 1 : this.walkGen + 1;
    this.o.walkMap.updateRaw(WALK_KEY, walkLayout.encode({ gen: this.walkGen, full: full ? 1 : 0, seen: 0, reported: 0 }));
  }

  /**
   * After a delta walk: did every listener it did not report stay as it was?
   * The walk passed `seen` distinct listeners and reported `reported` of
   * them; the rest were unchanged since their last report, so each is one
   * we keep. When their number is that of the entries an earlier open-files
   * walk reported and no record of this one touched, none of those has
   * gone: they are all carried into this snapshot. Otherwise (a listener
   * closed, or no process holds it any more) false, and the caller walks
   * again in full.
   */
  private checkDelta(gen: number, foreign: number): boolean {
    const ctl = this.o.walkMap!.lookupRaw(WALK_KEY);
    if (!ctl || foreign > 0) return false;
    const { seen, reported } = walkLayout.decode(ctl);
    const untouched = this.untouched;
    untouched.length = 0;
    for (const e of this.entries.values()) if (e.viaFiles && e.gen !== gen) untouched.push(e);
    if (untouched.length !== seen - reported) return false;
    for (const e of untouched) {
      e.prevAcceptQueue = e.acceptQueue;
      e.prevSynQueue = e.synQueue;
      e.prevSkDrops = e.skDrops;
      e.fresh = false;
      e.gen = gen;
    }
    return true;
  }

  /** Delete a listener from the BPF side's `last`. */
  private forgetLast(sk: number, skHi: number): void {
    this.o.lastMap?.deleteRaw(sockKey(sk, skHi));
  }

  /** Our own namespace's listeners that no process holds (parse() skips those the files walk saw). */
  private walkOwn(gen: number, seen: Set<number>): void {
    this.ownSkipped = undefined;
    this.ownAge = 0;
    if (this.ownNetns === undefined || !seen.has(this.ownNetns)) return;
    this.walks.ownWalks++;
    this.ownerless = this.parse(readIteratorFd(createIterator(this.o.iterLink), this.scratch), gen, seen, 'own').took > 0;
    this.storeByAddress(gen);
  }

  /**
   * Put the listeners the own walk just found (not via files, seen in this
   * snapshot) into `ownerlessMap`, and take out those it no longer found or
   * whose address now holds another socket. Past the map's size they are
   * walked for every interval, as without the map.
   */
  private storeByAddress(gen: number): void {
    const map = this.o.ownerlessMap;
    this.byAddressComplete = false;
    if (!map || !this.o.ownerlessLink) return;
    const found: Entry[] = [];
    for (const e of this.entries.values()) if (!e.viaFiles && e.gen === gen) found.push(e);
    const keep = new Set<number>();
    const room = map.maxEntries;
    for (const e of found.slice(0, room)) {
      keep.add(e.sk);
      const h = this.byAddress.get(e.sk);
      if (h && h.ino === e.ino && h.netns === e.netns && h.port === e.port) continue;
      const hint = { ino: e.ino, netns: e.netns, port: e.port };
      map.updateRaw(sockKey(e.sk, e.skHi), hintLayout.encode(hint));
      this.byAddress.set(e.sk, { skHi: e.skHi, ...hint });
    }
    for (const [sk, h] of this.byAddress) {
      if (keep.has(sk)) continue;
      map.deleteRaw(sockKey(sk, h.skHi));
      this.byAddress.delete(sk);
    }
    this.byAddressComplete = found.length <= room;
  }

  /** The listeners of `ownerlessMap` as they are now: one gone (or now another socket) writes no record, and leaves. */
  private readByAddress(gen: number, seen: Set<number>): void {
    this.walks.ownByAddress++;
    this.parse(readIteratorFd(createIterator(this.o.ownerlessLink!), this.scratch), gen, seen, 'own');
  }

  /**
   * Records of either iterator into entries. `source`: 'files', the
   * open-files walk (owners come with the records, 0: none); 'own', the
   * iter/tcp walk after it (listeners no process holds); 'tcp', the iter/tcp
   * walk of one namespace where there is no open-files walk. With 'files'
   * and 'own' a listener seen before in this snapshot is skipped. `spaces`:
   * only listeners of these namespaces. Returns how many records it took,
   * and how many it left because their namespace was not in `spaces`.
   */
  private parse(data: Buffer, gen: number, spaces: Set<number> | undefined, source: 'files' | 'own' | 'tcp'): { took: number; foreign: number } {
    const files = source !== 'tcp';
    const viaFiles = source === 'files';
    let took = 0;
    let foreign = 0;
    const F = infoLayout.fields;
    const size = infoLayout.size;
    const dv = new DataView(data.buffer, data.byteOffset, data.length);
    // A process's files come together, so its records share a namespace:
    // remember the last answer (Set.has on an inode above 2^31 is slow).
    let lastNetns = -1;
    let lastWanted = true;
    for (let at = 0; at + size <= data.length; at += size) {
      const sk = skKey(dv, at + F.sk.offset);
      const e = this.entries.get(sk);
      if (files && e !== undefined && e.gen === gen) continue;
      const netns = dv.getUint32(at + F.netns.offset, true);
      if (spaces && netns !== lastNetns) {
        lastNetns = netns;
        lastWanted = spaces.has(netns);
      }
      if (spaces && !lastWanted) {
        foreign++;
        continue;
      }
      took++;
      const ino = infoLayout.read(dv, 'ino', at);
      const acceptQueue = dv.getUint32(at + F.accept_queue.offset, true);
      const synQueue = dv.getUint32(at + F.syn_queue.offset, true);
      const skDrops = dv.getUint32(at + F.sk_drops.offset, true);
      const pid = files ? dv.getUint32(at + F.pid.offset, true) : 0;
      if (e !== undefined && e.ino === ino && e.netns === netns) {
        if (files && (e.owner?.pid ?? 0) !== pid) e.owner = pid ? { pid, comm: commAt(data, at + F.comm.offset) } : null;
        // The same listener: shift now to previous (address and port do not change).
        e.prevAcceptQueue = e.acceptQueue;
        e.prevSynQueue = e.synQueue;
        e.prevSkDrops = e.skDrops;
        e.fresh = false;
        e.acceptQueue = acceptQueue;
        e.acceptLimit = dv.getUint32(at + F.accept_limit.offset, true);
        e.synQueue = synQueue;
        e.skDrops = skDrops;
        e.gen = gen;
        e.viaFiles = viaFiles;
        this.touched.add(e);
        continue;
      }
      // A new listener, or a new one at the address of one that closed.
      if (e?.viaFiles && !viaFiles) this.forgetLast(sk, e.skHi);
      const family = dv.getUint32(at + F.family.offset, true);
      this.labels.delete(sk);
      this.changed = true;
      const fresh: Entry = {
        sk, netns, family, ino,
        addr: formatAddr(family, new Uint8Array(data.buffer, data.byteOffset + at + F.addr.offset, F.addr.size)),
        port: dv.getUint32(at + F.port.offset, true),
        acceptQueue, acceptLimit: dv.getUint32(at + F.accept_limit.offset, true), synQueue, skDrops,
        fresh: true, prevAcceptQueue: 0, prevSynQueue: 0, prevSkDrops: 0, gen,
        owner: pid ? { pid, comm: commAt(data, at + F.comm.offset) } : null,
        viaFiles, skHi: dv.getUint32(at + F.sk.offset + 4, true),
        row: undefined, space: this.tally(netns), counts: QUIET, ctrOwner: null, ctr: undefined,
      };
      this.entries.set(sk, fresh);
      this.touched.add(fresh);
    }
    return { took, foreign };
  }

  private selected(s: Snapshot): boolean {
    if (this.o.ports && !this.o.ports.has(s.port)) return false;
    if (this.o.family === 'ipv4' && s.family === AF_INET6) return false;
    if (this.o.family === 'ipv6' && s.family !== AF_INET6) return false;
    return true;
  }

  private tally(netns: number): NsTally {
    let t = this.tallies.get(netns);
    if (!t) this.tallies.set(netns, (t = { sys: undefined, rows: 0 }));
    return t;
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
    for (const e of this.entries.values()) {
      if (e.owner) pids.add(e.owner.pid);
      spaces.add(e.space);
    }
    for (const pid of this.containers.keys()) if (!pids.has(pid)) this.containers.delete(pid);
    for (const [inode, t] of this.tallies) if (!spaces.has(t)) this.tallies.delete(inode);
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
    const snap = this.snapshot();
    const counted = drainStats(this.o.statsMap);
    if (this.ownSkipped) {
      // The probes counted for a listener the walks did not see: one no
      // process holds, born since the last own-namespace walk. Walk now, so
      // that its counts are not dropped.
      const skipped = this.ownSkipped;
      for (const sk of counted.keys()) {
        if (!this.entries.has(sk)) {
          this.walkOwn(skipped.gen, skipped.seen);
          break;
        }
      }
    }
    const changed = this.changed;
    if (changed) {
      // A steady node keeps its listeners: sort them when that changes, not every interval.
      this.ordered = [...this.entries.values()].sort((a, b) => a.port - b.port || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0) || a.netns - b.netns);
      this.changed = false;
    }
    const files = this.o.filesLink !== undefined;
    const pids = this.o.wantedPids?.();
    // The few listeners with counts get them on their entry (a lookup per
    // counted listener, not per row).
    for (const [sk, c] of counted) {
      const e = this.entries.get(sk);
      if (e) e.counts = c;
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
      for (const e of this.touched) refresh(e);
      for (const e of this.touchedBefore) if (!this.touched.has(e)) refresh(e);
      for (const sk of counted.keys()) {
        const e = this.entries.get(sk);
        if (e && e.counts !== QUIET) refresh(e); // not refreshed above (that resets counts)
      }
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
        if (this.o.labels && !this.labels.has(e.sk)) {
          this.labels.set(e.sk, formatListener(e.addr, e.port, e.family) + (e.netns !== this.ownNetns ? ` (netns ${e.netns})` : ''));
        }
      }
      this.last = { mine: kept, rows, sysctls: snap.sysctls };
    }
    if (++this.collects % RECHECK_INTERVALS === 0) this.prune();

    const namespaces: NetnsSummary[] = [];
    const total: Record<string, number> = Object.fromEntries(NETSTAT.map((n) => [n, 0]));
    for (const [inode, st] of this.spaces) {
      const netstat = snap.deltas.get(inode)!;
      for (const n of NETSTAT) total[n] += netstat[n];
      namespaces.push({ netns: inode, name: st.name, pid: st.pid, listeners: this.tallies.get(inode)?.rows ?? 0, netstat });
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

/** A comm from a record (NUL-terminated, up to 16 bytes), as /proc/PID/comm reads. */
function commAt(data: Buffer, at: number): string {
  let end = at;
  while (end < at + 16 && data[end] !== 0) end++;
  return data.toString('utf8', at, end);
}

/** The collector's iterators from a load of synqueue.bpf.o (task_file is an optional program: 5.8+), with the open-files walk's maps. */
export function iteratorLinks(loaded: Loaded<typeof SKELETON>): Pick<CollectorOptions, 'iterLink' | 'filesLink' | 'walkMap' | 'lastMap' | 'ownerlessLink' | 'ownerlessMap'> {
  const iterLink = loaded.links[loaded.path.programs.indexOf('dump_listeners')];
  const k = loaded.optional?.indexOf('dump_listener_files') ?? -1;
  if (k < 0) return { iterLink };
  const ownerlessMap = loaded.obj.map('ownerless');
  return {
    iterLink, filesLink: loaded.links[loaded.path.programs.length + k], walkMap: loaded.obj.map('walk'), lastMap: loaded.obj.map('last'),
    ownerlessMap, ownerlessLink: loaded.obj.program('dump_ownerless').attachIterMap(ownerlessMap),
  };
}

/** A listener's struct sock address as a map key (8 bytes), from its key's low bits and skHi. */
function sockKey(sk: number, skHi: number): Uint8Array {
  const key = new DataView(new ArrayBuffer(8));
  key.setUint32(0, sk % 4294967296, true);
  key.setUint32(4, skHi, true);
  return new Uint8Array(key.buffer);
}

/** TcpExt deltas (names without the group); zero for a namespace seen for the first time. */
function netstatDelta(last: Map<string, number> | undefined, now: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of NETSTAT) {
    const k = `TcpExt.${n}`;
    out[n] = last ? Math.max(0, (now.get(k) ?? 0) - (last.get(k) ?? 0)) : 0;
  }
  return out;
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
