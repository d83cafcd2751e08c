// synqueue's listener table: every TCP listener of every network namespace
// (that has a process, or those given with --netns), kept up to date by one
// snapshot() per interval, with its owner and the figures of the snapshot
// before. The report built from it is collect.ts's.
//
// Per snapshot: ONE walk of every process's open files (iter/task_file,
// 5.8+) finds every listener a process holds, with its owner; after the
// first, a delta walk reports only listeners that changed and counts the
// rest (checkDelta). Listeners no process holds (kernel sockets) come from
// an iter/tcp walk of rbtrace's own namespace every RECHECK_INTERVALS, and
// are read again by address in between (iter/bpf_map_elem). Each
// namespace's TcpExt counters and SYN sysctls are read from inside it
// (src/core/netns.ts). Where iter/task_file is missing, the iter/tcp program
// is run from inside each namespace in turn (an iterator walks its creator's
// namespace: each walk also passes every other namespace's sockets, ~1.2 ms
// at 10,000 listeners) and owners come from a /proc/PID/fd scan (collect.ts).
import { createIterator, readIteratorFd, IterBuffer } from '../../core/iter.js';
import { inNetns, listNetns, ownNetnsInode, type Netns } from '../../core/netns.js';
import { readNetCounters } from '../../core/netstat.js';
import type { BpfMap } from '../../core/maps.js';
import type { BpfLink } from '../../core/object.js';
import type { Loaded } from '../../core/paths.js';
import {
  SKELETON, listener_info_layout as infoLayout, walk_ctl_layout as walkLayout, ownerless_hint_layout as hintLayout,
} from '../../generated/synqueue.js';
import { QUIET, formatAddr, type SynSysctls } from './model.js';
import { skKey, sockKey, type Entry, type NsTally } from './entry.js';
import { readSynSysctls } from './proc.js';

export const NETSTAT = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed'];

/** The iterators and maps of a load of synqueue.bpf.o that the table walks with (iteratorLinks()). */
export interface WalkSources {
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
}

export interface TableOptions extends WalkSources {
  /** --netns: only these namespaces (by inode; path used while no process is in one). */
  netns?: Netns[];
}

interface NetnsState {
  name: string | null;
  pid: number | null;
  counters: Map<string, number>;
}


/**
 * How many intervals two things that rarely change are trusted before they
 * are looked at again: the list of network namespaces (one readlink per
 * process: 1-2 ms on a busy node), and "no listener in rbtrace's namespace
 * lacks an owner" (one iter/tcp walk: 3-5 ms at 10,000 listeners, as it
 * passes every socket of every namespace).
 */
export const RECHECK_INTERVALS = 10;

/** The one key of `walk`. */
const WALK_KEY = new Uint8Array(4);

/** The listeners, kept between snapshots; snapshot() brings them up to date. */
export class ListenerTable {
  readonly entries = new Map<number, Entry>();
  private gen = 0;
  /** A listener came or went since the last report took it (collect.ts sorts them again then). */
  changed = true;
  /** Per namespace: its name, a pid in it, its counters at the last snapshot. */
  readonly spaces = new Map<number, NetnsState>();
  readonly tallies = new Map<number, NsTally>();
  private readonly scratch = new IterBuffer();
  /** sk -> the label views use for it (--hist, --events): address:port, and the namespace when not rbtrace's own. */
  readonly labels = new Map<number, string>();
  readonly ownNetns = ownNetnsInode();
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
   * Entries a record updated in this snapshot or the probes counted for
   * (collect.ts adds those), and those of the one before (whose previous
   * figures moved since, or whose counts go back to none): the only rows
   * that can change while no listener comes or goes, owners are only those
   * the walk reports and no sysctl changed (collect.ts).
   */
  touched = new Set<Entry>();
  touchedBefore = new Set<Entry>();

  constructor(private readonly o: TableOptions) {}

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
  snapshot(): { sysctls: Map<number, SynSysctls>; deltas: Map<number, Record<string, number>> } {
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
    const gone: Entry[] = [];
    for (const e of this.entries.values()) if (e.gen !== gen) gone.push(e);
    // One the open-files walk held before and no longer passes may be alive
    // with no process holding it (its fd passed on, in flight): when this
    // snapshot skipped the walk of our namespace, walk it now, so that such a
    // listener keeps its row (and its figures of the interval before).
    if (this.ownSkipped && gone.some((e) => e.viaFiles && e.netns === this.ownNetns)) {
      this.walkOwn(this.ownSkipped.gen, this.ownSkipped.seen);
    }
    for (const e of gone) {
      const sk = e.sk;
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
    this.parse(readIteratorFd(createIterator(this.o.iterLink), this.scratch), gen, seen, 'own');
    // Every listener of this snapshot that no process holds (those read by
    // address earlier in it included: parse() does not count them again).
    const found: Entry[] = [];
    for (const e of this.entries.values()) if (!e.viaFiles && e.gen === gen) found.push(e);
    this.ownerless = found.length > 0;
    this.storeByAddress(found);
  }

  /**
   * Put the listeners the own walk just found (not via files, seen in this
   * snapshot) into `ownerlessMap`, and take out those it no longer found or
   * whose address now holds another socket. Past the map's size they are
   * walked for every interval, as without the map.
   */
  private storeByAddress(found: Entry[]): void {
    const map = this.o.ownerlessMap;
    this.byAddressComplete = false;
    if (!map || !this.o.ownerlessLink) return;
    const room = map.maxEntries;
    const keep = new Set(found.slice(0, room).map((e) => e.sk));
    // Out first, so that a full map has room for the new ones.
    for (const [sk, h] of this.byAddress) {
      if (keep.has(sk)) continue;
      map.deleteRaw(sockKey(sk, h.skHi));
      this.byAddress.delete(sk);
    }
    for (const e of found.slice(0, room)) {
      const h = this.byAddress.get(e.sk);
      if (h && h.ino === e.ino && h.netns === e.netns && h.port === e.port) continue;
      const hint = { ino: e.ino, netns: e.netns, port: e.port };
      map.updateRaw(sockKey(e.sk, e.skHi), hintLayout.encode(hint));
      this.byAddress.set(e.sk, { skHi: e.skHi, ...hint });
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
        // No process holds it any more: the open-files walk's `last` need not keep it.
        if (e.viaFiles && !viaFiles) this.forgetLast(sk, e.skHi);
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


  /**
   * The probes counted for these listeners. One the walks did not see is
   * one no process holds, born since the last own-namespace walk: when this
   * snapshot skipped that walk, walk now, so that its counts are not dropped.
   */
  catchUnknown(sks: Iterable<number>): void {
    const skipped = this.ownSkipped;
    if (!skipped) return;
    for (const sk of sks) {
      if (!this.entries.has(sk)) {
        this.walkOwn(skipped.gen, skipped.seen);
        return;
      }
    }
  }

  private tally(netns: number): NsTally {
    let t = this.tallies.get(netns);
    if (!t) this.tallies.set(netns, (t = { sys: undefined, rows: 0 }));
    return t;
  }
}

/** A comm from a record (NUL-terminated, up to 16 bytes), as /proc/PID/comm reads. */
function commAt(data: Buffer, at: number): string {
  let end = at;
  while (end < at + 16 && data[end] !== 0) end++;
  return data.toString('utf8', at, end);
}

/** The collector's iterators from a load of synqueue.bpf.o (task_file is an optional program: 5.8+), with the open-files walk's maps. */
export function iteratorLinks(loaded: Loaded<typeof SKELETON>): WalkSources {
  const iterLink = loaded.link('dump_listeners')!;
  const filesLink = loaded.link('dump_listener_files');
  if (!filesLink) return { iterLink };
  const ownerlessMap = loaded.obj.map('ownerless');
  // Without it (refused: some kernels' policy forbids iter/bpf_map_elem), rbtrace's namespace is walked every interval instead.
  const ownerlessLink = loaded.attachOptional('dump_ownerless', (prog) => prog.attachIterMap(ownerlessMap));
  return {
    iterLink, filesLink, walkMap: loaded.obj.map('walk'), lastMap: loaded.obj.map('last'),
    ...(ownerlessLink ? { ownerlessMap, ownerlessLink } : {}),
  };
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
