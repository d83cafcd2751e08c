// synqueue's collector: one call, one typed report (SynqueueReport) for the
// interval since the last call. Reused by anything that wants the figures
// without the views (the exporter).
//
// Per interval and per network namespace (every namespace that has a
// process, or those given with --netns): the iter/tcp program is run from
// inside that namespace (src/core/netns.ts: an iterator walks its creator's
// namespace), and that namespace's TcpExt counters and SYN sysctls are read
// while there. The probes' per-listener counts need no such care: they fire
// in every namespace and are keyed by the listener's struct sock address.
import { createIterator, readIteratorFd, records } from '../core/iter.js';
import { inNetns, listNetns, ownNetnsInode, type Netns } from '../core/netns.js';
import { readNetCounters } from '../core/netstat.js';
import { SocketOwners } from '../core/sockowners.js';
import { cgroupOfPid, cgroupUnder, containerOf } from '../core/cgroup.js';
import { possibleCpus, type BpfMap } from '../core/maps.js';
import type { BpfLink } from '../core/object.js';
import { listener_info_layout as infoLayout, listener_stats_layout as statsLayout } from '../generated/synqueue.js';
import {
  AF_INET6, buildRow, emptyCounted, formatAddr, formatListener,
  type Counted, type ListenerRow, type NetnsSummary, type Snapshot, type SynqueueReport, type SynSysctls,
} from './synqueue-model.js';
import { readSynSysctls } from './synqueue-proc.js';

export const NETSTAT = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed'];

export interface CollectorOptions {
  iterLink: BpfLink;
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
}

interface NetnsState {
  name: string | null;
  pid: number | null;
  counters: Map<string, number>;
}

const skKey = (dv: DataView, offset: number) => dv.getBigUint64(offset, true).toString(16);

export class SynqueueCollector {
  private prev = new Map<string, Snapshot>();
  private readonly spaces = new Map<number, NetnsState>();
  private readonly owners = new SocketOwners(1000);
  private readonly containers = new Map<number, { cgroup: string | undefined; container: string | null }>();
  /** sk -> the label views use for it (--hist, --events): address:port, and the namespace when not rbtrace's own. */
  readonly labels = new Map<string, string>();
  private readonly ownNetns = ownNetnsInode();

  constructor(private readonly o: CollectorOptions) {
    this.prev = this.snapshot().listeners;
  }

  /** The namespaces to walk now: every one with a process (or named), or those of --netns. */
  private namespaces(): Netns[] {
    const all = listNetns();
    if (!this.o.netns) return [...all.values()];
    return this.o.netns.map((n) => all.get(n.inode) ?? n);
  }

  /** Every listener of every namespace now, and each namespace's counters and sysctls. */
  private snapshot(): { listeners: Map<string, Snapshot>; sysctls: Map<number, SynSysctls>; deltas: Map<number, Record<string, number>> } {
    const listeners = new Map<string, Snapshot>();
    const sysctls = new Map<number, SynSysctls>();
    const deltas = new Map<number, Record<string, number>>();
    const seen = new Set<number>();
    for (const ns of this.namespaces()) {
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
      if (seen.has(inode)) {
        readIteratorFd(value.fd); // closes it
        continue;
      }
      seen.add(inode);
      this.parse(readIteratorFd(value.fd), inode, listeners);
      sysctls.set(inode, value.sys);
      const state = this.spaces.get(inode);
      deltas.set(inode, netstatDelta(state?.counters, value.counters));
      this.spaces.set(inode, { name: ns.name ?? null, pid: ns.pid ?? null, counters: value.counters });
    }
    for (const inode of this.spaces.keys()) if (!seen.has(inode)) this.spaces.delete(inode);
    return { listeners, sysctls, deltas };
  }

  private parse(data: Buffer, netns: number, into: Map<string, Snapshot>): void {
    const F = infoLayout.fields;
    for (const rec of records(data, infoLayout.size)) {
      const sk = skKey(rec, F.sk.offset);
      const family = rec.getUint32(F.family.offset, true);
      const a = F.addr.offset;
      const bytes = new Uint8Array(rec.buffer, rec.byteOffset + a, 16);
      into.set(sk, {
        sk, netns, family,
        ino: rec.getUint32(F.ino.offset, true) + rec.getUint32(F.ino.offset + 4, true) * 4294967296,
        addr: formatAddr(family, bytes),
        port: rec.getUint32(F.port.offset, true),
        acceptQueue: rec.getUint32(F.accept_queue.offset, true),
        acceptLimit: rec.getUint32(F.accept_limit.offset, true),
        synQueue: rec.getUint32(F.syn_queue.offset, true),
        skDrops: rec.getUint32(F.sk_drops.offset, true),
      });
    }
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

  /** The report for the interval since the last call. */
  collect(final = false): SynqueueReport {
    const snap = this.snapshot();
    const counted = drainStats(this.o.statsMap);
    const mine: Snapshot[] = [];
    for (const s of snap.listeners.values()) if (this.selected(s)) mine.push(s);
    const own = this.owners.lookup(mine.map((s) => s.ino));
    const pids = this.o.wantedPids?.();
    const rows: ListenerRow[] = [];
    const perNs = new Map<number, number>();
    const livePids = new Set<number>();
    for (const s of mine) {
      const o = own.get(s.ino) ?? null;
      if (pids && (!o || !pids.has(o.pid))) continue;
      const c = o ? this.containerOf(o.pid) : undefined;
      if (o) livePids.add(o.pid);
      if (this.o.cgroup !== undefined && !cgroupUnder(c?.cgroup, this.o.cgroup)) continue;
      const sys = snap.sysctls.get(s.netns)!;
      rows.push({
        ...buildRow(s, this.prev.get(s.sk), counted.get(s.sk) ?? emptyCounted(), this.o.perSyn, sys, this.o.seesEnqueues),
        netns: s.netns, pid: o?.pid ?? null, comm: o?.comm ?? null, container: c?.container ?? null,
      } as ListenerRow);
      perNs.set(s.netns, (perNs.get(s.netns) ?? 0) + 1);
      if (!this.labels.has(s.sk)) {
        this.labels.set(s.sk, formatListener(s.addr, s.port, s.family) + (s.netns !== this.ownNetns ? ` (netns ${s.netns})` : ''));
      }
    }
    for (const pid of this.containers.keys()) if (!livePids.has(pid)) this.containers.delete(pid);
    rows.sort((a, b) => a.port - b.port || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0) || a.netns - b.netns);
    this.prev = snap.listeners;

    const namespaces: NetnsSummary[] = [];
    const total: Record<string, number> = Object.fromEntries(NETSTAT.map((n) => [n, 0]));
    for (const [inode, st] of this.spaces) {
      const netstat = snap.deltas.get(inode)!;
      for (const n of NETSTAT) total[n] += netstat[n];
      namespaces.push({ netns: inode, name: st.name, pid: st.pid, listeners: perNs.get(inode) ?? 0, netstat });
    }
    return { time: new Date().toISOString(), attach: this.o.attach, ...(final ? { final: true } : {}), listeners: rows, netstat: total, namespaces };
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

/** Drain the per-CPU stats map: listener -> counts since the last drain. */
function drainStats(ctxMap: BpfMap): Map<string, Counted> {
  const out = new Map<string, Counted>();
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
