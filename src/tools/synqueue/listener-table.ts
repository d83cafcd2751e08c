// synqueue's listener table: every TCP listener of every network namespace
// (that has a process, or those given with --netns), kept up to date by one
// snapshot() per interval, with its owner and the figures of the snapshot
// before. The report built from it is collect.ts's, which also holds the
// maps the walks are steered with (WalkMaps): this file reads iterators only.
//
// Per snapshot: ONE walk of every process's open files (iter/task_file,
// 5.8+) finds every listener a process holds, with its owner; after the
// first, a delta walk reports only listeners that changed and counts the
// rest (checkDelta). Listeners no process holds (kernel sockets) come from
// an iter/tcp walk of rbtrace's own namespace every RECHECK_INTERVALS, and
// are read again by address in between (iter/bpf_map_elem). Each
// namespace's TcpExt counters and SYN sysctls are read from inside it
// (namespaces.ts). Where iter/task_file is missing, the iter/tcp program
// is run from inside each namespace in turn (an iterator walks its creator's
// namespace: each walk also passes every other namespace's sockets, ~1.2 ms
// at 10,000 listeners) and owners come from a /proc/PID/fd scan (collect.ts).
import { createIterator, readIteratorFd, IterBuffer } from '../../core/bpf/iter.js';
import { ownNetnsInode, type Netns } from '../../core/linux/netns.js';
import { listener_info_layout as infoLayout, type OwnerlessHint } from '../../generated/synqueue.js';
import { QUIET, formatAddr } from './model.js';
import type { Entry } from './entry.js';
import type { WalkLinks } from './probe.js';
import { Namespaces, RECHECK_INTERVALS, readInside, type NetnsReadings } from './namespaces.js';

/** The BPF side's walk maps, as the table steers them (collect.ts walkMaps() implements it over the typed maps). */
export interface WalkMaps {
  /** Number the next open-files walk (walk_ctl), full or delta. */
  startWalk(gen: number, full: boolean): void;
  /** What the last open-files walk counted: listeners passed, records written. */
  walkCounts(): { seen: number; reported: number } | undefined;
  /** Delete a listener from `last` (what the open-files walk last reported of each). */
  forgetLast(sk: bigint): void;
  /** `ownerless`, the listeners dump_ownerless reads again by address (when it is attached). */
  ownerless?: { room: number; put(sk: bigint, hint: OwnerlessHint): void; delete(sk: bigint): boolean };
}

/** The listeners, kept between snapshots; snapshot() brings them up to date. */
export class ListenerTable {
  private readonly entries = new Map<bigint, Entry>();
  private gen = 0;
  /** A listener came or went since the report last took this (takeChanged). */
  private changed = true;
  readonly namespaces: Namespaces;
  private readonly scratch = new IterBuffer();
  readonly ownNetns = ownNetnsInode();
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
  private readonly walkCounts = { delta: 0, redone: 0, full: 0, ownWalks: 0, ownByAddress: 0 };
  /** What `ownerless` holds (by address), and whether it holds every listener the last own walk found. */
  private readonly byAddress = new Map<bigint, OwnerlessHint>();
  private byAddressComplete = false;
  /** checkDelta's list, kept between intervals. */
  private readonly untouched: Entry[] = [];
  /**
   * Entries a record updated in this snapshot or the probes counted for
   * (touch()), and those of the one before (whose previous figures moved
   * since, or whose counts go back to none): the only rows that can change
   * while no listener comes or goes, owners are only those the walk reports
   * and no sysctl changed (collect.ts).
   */
  private touched = new Set<Entry>();
  private touchedBefore = new Set<Entry>();

  /** `maps`: with links.files only (delta walks, reads by address). */
  constructor(private readonly links: WalkLinks, private readonly maps?: WalkMaps, netns?: Netns[]) {
    this.namespaces = new Namespaces(netns);
  }

  get walks(): Readonly<ListenerTable['walkCounts']> {
    return this.walkCounts;
  }

  get(sk: bigint): Entry | undefined {
    return this.entries.get(sk);
  }

  all(): IterableIterator<Entry> {
    return this.entries.values();
  }

  /** Whether a listener came or went since the last call. */
  takeChanged(): boolean {
    const changed = this.changed;
    this.changed = false;
    return changed;
  }

  /** The probes counted for it: its row may change now and next interval. */
  touch(e: Entry): void {
    this.touched.add(e);
  }

  /** Each entry touched in this snapshot or the one before, once. */
  forEachTouched(fn: (e: Entry) => void): void {
    for (const e of this.touched) fn(e);
    for (const e of this.touchedBefore) if (!this.touched.has(e)) fn(e);
  }

  /** Update every listener of every namespace to now, and return each namespace's sysctls and counter deltas. */
  snapshot(): NetnsReadings {
    const gen = ++this.gen;
    [this.touchedBefore, this.touched] = [this.touched, this.touchedBefore];
    this.touched.clear();
    const out: NetnsReadings = { sysctls: new Map(), deltas: new Map() };
    const seen = new Set<number>();
    if (this.links.files) this.snapshotFiles(gen, out, seen);
    else for (const ns of this.namespaces.current()) {
      let got;
      try {
        got = readInside(ns, () => createIterator(this.links.tcp));
      } catch {
        continue; // the namespace went away with its last process
      }
      const data = readIteratorFd(got.also, this.scratch); // also closes it
      if (seen.has(got.inode)) continue;
      seen.add(got.inode);
      this.parse(data, gen, undefined, 'tcp');
      this.namespaces.note(ns, got.inode, got.counters, got.sys, out);
    }
    this.namespaces.keepOnly(seen);
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
      if (e.gen === gen) continue;
      this.entries.delete(e.sk);
      this.changed = true;
      // Gone (or no longer held by any process): the BPF side forgets it
      // too, so that if it comes back it is reported, never taken as known.
      if (e.viaFiles) this.maps?.forgetLast(e.sk);
      else if (this.byAddress.delete(e.sk)) this.maps!.ownerless!.delete(e.sk);
    }
    return out;
  }

  /**
   * One walk of every process's open files for every namespace's listeners
   * and owners, one walk of rbtrace's own namespace for those no process
   * holds, and each namespace's counters read from inside it (no iterator
   * there: cheap). The namespace list is cached (Namespaces.cached); a
   * listener from a namespace not in it makes it listed again at once, and
   * the records are read again, so no listener is missed for an interval.
   * The own-namespace walk runs every interval while it finds ownerless
   * listeners (kernel sockets), else every RECHECK_INTERVALS: a new ownerless
   * listener can take that long to show.
   */
  private snapshotFiles(gen: number, out: NetnsReadings, seen: Set<number>): void {
    let relisted = this.namespaces.relistDue;
    const readCounters = (spaces: Netns[]): boolean => {
      let gone = false;
      for (const ns of spaces) {
        let got;
        try {
          got = readInside(ns, () => undefined);
        } catch {
          gone = true; // the namespace went away with its last process, or the pid we knew it by did
          continue;
        }
        if (seen.has(got.inode)) continue;
        seen.add(got.inode);
        this.namespaces.note(ns, got.inode, got.counters, got.sys, out);
      }
      return gone;
    };
    if (readCounters(this.namespaces.cached(false)) && !relisted) {
      relisted = true;
      readCounters(this.namespaces.cached(true));
    }
    // A delta walk reports only listeners that are new or changed; the
    // others are known to be there when its count of listeners passed adds
    // up (checkDelta). It is not used with --netns: the walk passes
    // listeners of namespaces not taken, which user space does not keep.
    const netns = this.namespaces.only;
    const delta = this.maps !== undefined && !this.fullNext && !netns;
    const walk = (full: boolean): { foreign: number } => {
      this.maps?.startWalk(this.nextWalkGen(), full);
      const data = readIteratorFd(createIterator(this.links.files!), this.scratch);
      let r = this.parse(data, gen, seen, 'files');
      if (r.foreign > 0 && !relisted && !netns) {
        relisted = true;
        readCounters(this.namespaces.cached(true));
        const again = this.parse(data, gen, seen, 'files');
        r = { took: r.took + again.took, foreign: again.foreign };
      }
      return r;
    };
    // Until the records are in, what the BPF side holds may be ahead of us.
    this.fullNext = true;
    if (!delta) {
      walk(true);
      if (this.maps) this.walkCounts.full++;
    } else {
      this.walkCounts.delta++;
      const r = walk(false);
      if (!this.checkDelta(gen, r.foreign)) {
        this.walkCounts.redone++;
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

  /** The next open-files walk's number: never 0 (0 is "no walk yet" to the BPF side). */
  private nextWalkGen(): number {
    this.walkGen = this.walkGen >= 0xffffffff ? 1 : this.walkGen + 1;
    return this.walkGen;
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
    const ctl = this.maps!.walkCounts();
    if (!ctl || foreign > 0) return false;
    const untouched = this.untouched;
    untouched.length = 0;
    for (const e of this.entries.values()) if (e.viaFiles && e.gen !== gen) untouched.push(e);
    if (untouched.length !== ctl.seen - ctl.reported) return false;
    for (const e of untouched) {
      e.prevAcceptQueue = e.acceptQueue;
      e.prevSynQueue = e.synQueue;
      e.prevSkDrops = e.skDrops;
      e.fresh = false;
      e.gen = gen;
    }
    return true;
  }

  /** Our own namespace's listeners that no process holds (parse() skips those the files walk saw). */
  private walkOwn(gen: number, seen: Set<number>): void {
    this.ownSkipped = undefined;
    this.ownAge = 0;
    if (this.ownNetns === undefined || !seen.has(this.ownNetns)) return;
    this.walkCounts.ownWalks++;
    this.parse(readIteratorFd(createIterator(this.links.tcp), this.scratch), gen, seen, 'own');
    // Every listener of this snapshot that no process holds (those read by
    // address earlier in it included: parse() does not count them again).
    const found: Entry[] = [];
    for (const e of this.entries.values()) if (!e.viaFiles && e.gen === gen) found.push(e);
    this.ownerless = found.length > 0;
    this.storeByAddress(found);
  }

  /**
   * Put the listeners the own walk just found (not via files, seen in this
   * snapshot) into `ownerless`, and take out those it no longer found or
   * whose address now holds another socket. Past the map's size they are
   * walked for every interval, as without the map.
   */
  private storeByAddress(found: Entry[]): void {
    const map = this.maps?.ownerless;
    this.byAddressComplete = false;
    if (!map || !this.links.ownerless) return;
    const room = map.room;
    const keep = new Set(found.slice(0, room).map((e) => e.sk));
    // Out first, so that a full map has room for the new ones.
    for (const sk of this.byAddress.keys()) {
      if (keep.has(sk)) continue;
      map.delete(sk);
      this.byAddress.delete(sk);
    }
    for (const e of found.slice(0, room)) {
      const h = this.byAddress.get(e.sk);
      if (h && h.ino === e.ino && h.netns === e.netns && h.port === e.port) continue;
      const hint = { ino: e.ino, netns: e.netns, port: e.port };
      map.put(e.sk, hint);
      this.byAddress.set(e.sk, hint);
    }
    this.byAddressComplete = found.length <= room;
  }

  /** The listeners of `ownerless` as they are now: one gone (or now another socket) writes no record, and leaves. */
  private readByAddress(gen: number, seen: Set<number>): void {
    this.walkCounts.ownByAddress++;
    this.parse(readIteratorFd(createIterator(this.links.ownerless!), this.scratch), gen, seen, 'own');
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
    const size = infoLayout.size;
    const dv = new DataView(data.buffer, data.byteOffset, data.length);
    // A process's files come together, so its records share a namespace:
    // remember the last answer (Set.has on an inode above 2^31 is slow).
    let lastNetns = -1;
    let lastWanted = true;
    for (let at = 0; at + size <= data.length; at += size) {
      const sk = infoLayout.read(dv, 'sk', at);
      const e = this.entries.get(sk);
      if (files && e !== undefined && e.gen === gen) continue;
      const netns = infoLayout.read(dv, 'netns', at);
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
      const acceptQueue = infoLayout.read(dv, 'accept_queue', at);
      const synQueue = infoLayout.read(dv, 'syn_queue', at);
      const skDrops = infoLayout.read(dv, 'sk_drops', at);
      const pid = files ? infoLayout.read(dv, 'pid', at) : 0;
      if (e !== undefined && e.ino === ino && e.netns === netns) {
        if (files && (e.owner?.pid ?? 0) !== pid) e.owner = pid ? { pid, comm: commAt(dv, at) } : null;
        // No process holds it any more: the open-files walk's `last` need not keep it.
        if (e.viaFiles && !viaFiles) this.maps?.forgetLast(sk);
        // The same listener: shift now to previous (address and port do not change).
        e.prevAcceptQueue = e.acceptQueue;
        e.prevSynQueue = e.synQueue;
        e.prevSkDrops = e.skDrops;
        e.fresh = false;
        e.acceptQueue = acceptQueue;
        e.acceptLimit = infoLayout.read(dv, 'accept_limit', at);
        e.synQueue = synQueue;
        e.skDrops = skDrops;
        e.gen = gen;
        e.viaFiles = viaFiles;
        this.touched.add(e);
        continue;
      }
      // A new listener, or a new one at the address of one that closed.
      if (e?.viaFiles && !viaFiles) this.maps?.forgetLast(sk);
      const family = infoLayout.read(dv, 'family', at);
      this.changed = true;
      const fresh: Entry = {
        sk, netns, family, ino,
        addr: formatAddr(family, infoLayout.bytes(dv, 'addr', undefined, at)),
        port: infoLayout.read(dv, 'port', at),
        acceptQueue, acceptLimit: infoLayout.read(dv, 'accept_limit', at), synQueue, skDrops,
        fresh: true, prevAcceptQueue: 0, prevSynQueue: 0, prevSkDrops: 0, gen,
        owner: pid ? { pid, comm: commAt(dv, at) } : null,
        viaFiles,
        row: undefined, space: undefined, counts: QUIET, ctrOwner: null, ctr: undefined, label: undefined,
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
  catchUnknown(sks: Iterable<bigint>): void {
    const skipped = this.ownSkipped;
    if (!skipped) return;
    for (const sk of sks) {
      if (!this.entries.has(sk)) {
        this.walkOwn(skipped.gen, skipped.seen);
        return;
      }
    }
  }
}

/** The owner's comm from a record (NUL-terminated, up to 16 bytes), as /proc/PID/comm reads. */
function commAt(dv: DataView, at: number): string {
  const bytes = infoLayout.bytes(dv, 'comm', undefined, at);
  let end = 0;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('utf8');
}
