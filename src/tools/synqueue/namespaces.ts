// The network namespaces synqueue covers, and each one's TcpExt counters and
// SYN sysctls, read from inside it (src/core/linux/netns.ts): the listener table
// (listener-table.ts) asks for them once per snapshot.
import { inNetns, listNetns, type Netns } from '../../core/linux/netns.js';
import { readNetCounters } from '../../core/linux/netstat.js';
import type { SynSysctls } from './model.js';
import { readSynSysctls } from './proc.js';

export const NETSTAT = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed'];

/**
 * How many intervals two things that rarely change are trusted before they
 * are looked at again: the list of network namespaces (one readlink per
 * process: 1-2 ms on a busy node), and "no listener in rbtrace's namespace
 * lacks an owner" (one iter/tcp walk: 3-5 ms at 10,000 listeners, as it
 * passes every socket of every namespace).
 */
export const RECHECK_INTERVALS = 10;

/** A namespace as the last snapshot left it: its name, a pid in it, its counters. */
export interface NetnsState {
  name: string | null;
  pid: number | null;
  counters: Map<string, number>;
}

/** What one snapshot read of each namespace, by inode: its SYN sysctls and its TcpExt deltas. */
export interface NetnsReadings {
  sysctls: Map<number, SynSysctls>;
  deltas: Map<number, Record<string, number>>;
}

/** A namespace's counters and sysctls, read from inside it (with `also`, run there too: an iterator walks its creator's namespace). */
export function readInside<T>(ns: Netns, also: () => T): { inode: number; counters: Map<string, number>; sys: SynSysctls; also: T } {
  const { inode, value } = inNetns(ns.path, () => ({ also: also(), counters: readNetCounters('/proc/thread-self/net/netstat'), sys: readSynSysctls() }));
  return { inode, ...value };
}

export class Namespaces {
  /** Per namespace seen by the last snapshot: its name, a pid in it, its counters then. */
  private readonly states = new Map<number, NetnsState>();
  /** The namespaces of the last listing, and how many snapshots ago it was made. */
  private list: Netns[] | undefined;
  private age = 0;

  /** `only`: --netns (by inode; the path is used while no process is in one). */
  constructor(readonly only?: Netns[]) {}

  /** The namespaces to walk now: every one with a process (or named), or those of --netns. */
  current(): Netns[] {
    const all = listNetns();
    if (!this.only) return [...all.values()];
    return this.only.map((n) => all.get(n.inode) ?? n);
  }

  /**
   * current(), listed again only every RECHECK_INTERVALS snapshots or when
   * `stale` (a namespace could not be entered, or a listener came from one
   * not in the list).
   */
  cached(stale: boolean): Netns[] {
    if (stale || this.list === undefined || ++this.age >= RECHECK_INTERVALS) {
      this.list = this.current();
      this.age = 0;
    }
    return this.list;
  }

  /** Whether the next cached() lists them again anyway. */
  get relistDue(): boolean {
    return this.list === undefined || this.age + 1 >= RECHECK_INTERVALS;
  }

  /** Note what this snapshot read of one namespace. */
  note(ns: Netns, inode: number, counters: Map<string, number>, sys: SynSysctls, out: NetnsReadings): void {
    out.sysctls.set(inode, sys);
    const state = this.states.get(inode);
    out.deltas.set(inode, netstatDelta(state?.counters, counters));
    this.states.set(inode, { name: ns.name ?? null, pid: ns.pid ?? null, counters });
  }

  /** Forget the namespaces this snapshot did not see. */
  keepOnly(seen: Set<number>): void {
    for (const inode of this.states.keys()) if (!seen.has(inode)) this.states.delete(inode);
  }

  /** The namespaces of the last snapshot, in the order they were first seen. */
  seen(): ReadonlyMap<number, Readonly<NetnsState>> {
    return this.states;
  }
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
