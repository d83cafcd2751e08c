// synqueue's model: what one listener looks like in a snapshot, what the
// probes count for it between snapshots, and the typed report one interval
// gives (the contract of every view, the JSON records and the exporter).
// Pure: unit-tested without BPF.
import { UsageError } from '../../core/errors.js';

export const AF_INET6 = 10;

/** One listener's figures as the last walk read them (its identity, the struct sock address, is the table's: listener-table.ts Entry). */
export interface ListenerSnapshot {
  ino: number;
  /** Inode of the network namespace the iterator walked. */
  netns: number;
  family: number;
  addr: string;
  port: number;
  acceptQueue: number;
  acceptLimit: number;
  synQueue: number;
  skDrops: number;
}

/** What the probes counted for one listener since the last report. */
export interface Counted {
  enqueues: number;
  overflows: number;
  drops: number;
  syncookies: number;
  synackRetrans: number;
  syns: number;
  freed: number;
  acceptMax: number;
  synMax: number;
}

export function emptyCounted(): Counted {
  return { enqueues: 0, overflows: 0, drops: 0, syncookies: 0, synackRetrans: 0, syns: 0, freed: 0, acceptMax: 0, synMax: 0 };
}

/** One listener's line of a report: the JSON record's listeners[] entry. */
export interface ListenerRow {
  addr: string;
  port: number;
  family: 'ipv4' | 'ipv6';
  /** Inode of its network namespace (lsns -t net, ip netns identify). */
  netns: number;
  pid: number | null;
  comm: string | null;
  /** Container or pod id from the owner's cgroup path (src/core/linux/cgroup.ts containerOf), else null. */
  container: string | null;
  accept_queue: number;
  accept_queue_max: number;
  accept_limit: number;
  syn_queue: number;
  syn_queue_max: number;
  syn_limit: number;
  overflows: number;
  drops: number;
  syncookies: number | null;
  synack_retrans: number;
  /** null when no probe sees enqueues (tracepoint paths before 6.2). */
  enqueued: number | null;
  /** true when overflows were inferred from sk_drops (no per-SYN probe). */
  overflows_inferred?: boolean;
}

/** One overflow or drop, as --events prints it (a ring-buffer record, or counts inferred from sk_drops). */
export interface EventRecord {
  time: string;
  event: 'overflow' | 'drop';
  listener: string;
  addr: string;
  port: number;
  remote_addr: string | null;
  remote_port: number | null;
  reason: string | null;
  accept_queue: number;
  accept_limit: number;
  syn_queue: number;
  count?: number;
  inferred?: boolean;
}

/** One network namespace of a report. */
export interface NetnsSummary {
  netns: number;
  /** Its name under /run/netns (ip netns), or null. */
  name: string | null;
  /** A process in it (the lowest pid), or null for a named namespace without one. */
  pid: number | null;
  /** Listeners of it in this report (after filters). */
  listeners: number;
  /** Its TcpExt deltas this interval (nstat-style). */
  netstat: Record<string, number>;
}

/** One interval: what every view, the JSON records and the exporter read. */
export interface SynqueueReport {
  time: string;
  attach: string;
  final?: boolean;
  listeners: ListenerRow[];
  /** TcpExt deltas summed over the namespaces covered. */
  netstat: Record<string, number>;
  namespaces: NetnsSummary[];
}

export { formatAddr } from '../../core/linux/inet.js';

/** 127.0.0.1:80, [::1]:80, *:80 (any IPv4), [::]:80. */
export function formatListener(addr: string, port: number, family: number): string {
  if (family === AF_INET6) return `[${addr}]:${port}`;
  return `${addr === '0.0.0.0' ? '*' : addr}:${port}`;
}

export function labelOf(r: Pick<ListenerRow, 'addr' | 'port' | 'family'>): string {
  return formatListener(r.addr, r.port, r.family === 'ipv6' ? AF_INET6 : 2);
}

export function parsePorts(text: string): number[] {
  const ports = text.split(',').map((p) => p.trim());
  return ports.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 65535) throw new UsageError(`--port wants port numbers (1-65535, comma-separated), got '${text}'`, 'e.g. --port 80,443');
    return n;
  });
}

/**
 * The SYN queue's effective limit, as tcp_conn_request() applies it: with
 * syncookies=1 a full queue (qlen > sk_max_ack_backlog) switches to cookies;
 * with syncookies=0 SYNs are also dropped once fewer than a quarter of
 * tcp_max_syn_backlog slots are left; syncookies=2 sends cookies always.
 */
export function synLimit(acceptLimit: number, syncookies: number, maxSynBacklog: number): number {
  if (syncookies === 2) return 0;
  if (syncookies === 0) return Math.min(acceptLimit, maxSynBacklog - (maxSynBacklog >> 2));
  return acceptLimit;
}

/** The two sysctls synLimit() needs (per network namespace). */
export interface SynSysctls {
  syncookies: number;
  maxSynBacklog: number;
}

/**
 * Combine a listener's snapshot now, its snapshot at the start of the
 * interval, and what the probes counted in between, into one report row.
 */
export function buildRow(now: ListenerSnapshot, prev: Pick<ListenerSnapshot, 'acceptQueue' | 'synQueue' | 'skDrops'> | undefined, c: Counted, perSyn: boolean,
  sys: SynSysctls, seesEnqueues = true, owner: { pid: number; comm: string } | null = null, container: string | null = null): ListenerRow {
  const acceptMax = Math.max(c.acceptMax, now.acceptQueue, prev?.acceptQueue ?? 0);
  const synMax = Math.max(c.synMax, now.synQueue, prev?.synQueue ?? 0);
  // sk_drops counts every tcp_listendrop() on this listener (what TcpExt
  // ListenDrops counts), plus every packet it discarded through kfree_skb
  // (a final ACK that met a full accept queue is counted both ways, a
  // duplicate SYN only the second way). The probes count the latter
  // ('freed'), so the difference is this listener's share of ListenDrops.
  // A listener born during the interval had all its drops in it.
  const skDelta = prev ? (now.skDrops - prev.skDrops) >>> 0 : now.skDrops;
  const drops = Math.max(0, skDelta - c.freed);
  let overflows = c.overflows;
  let inferred = false;
  if (!perSyn && acceptMax > now.acceptLimit) {
    // SYNs dropped because the accept queue was full leave no kfree_skb
    // (the kernel "consumes" them); with the queue seen beyond its limit this
    // interval, this listener's drops were overflows.
    overflows = Math.max(c.overflows, drops);
    inferred = overflows > c.overflows;
  }
  // One object literal of a fixed shape: at 10,000 listeners a spread of a
  // partial row into a full one cost ~6 µs a row, more than all the rest.
  const row: ListenerRow = {
    addr: now.addr,
    port: now.port,
    family: now.family === AF_INET6 ? 'ipv6' : 'ipv4',
    netns: now.netns,
    pid: owner ? owner.pid : null,
    comm: owner ? owner.comm : null,
    container,
    accept_queue: now.acceptQueue,
    accept_queue_max: acceptMax,
    accept_limit: now.acceptLimit,
    syn_queue: now.synQueue,
    syn_queue_max: synMax,
    syn_limit: synLimit(now.acceptLimit, sys.syncookies, sys.maxSynBacklog),
    overflows,
    drops,
    syncookies: perSyn ? c.syncookies : null,
    synack_retrans: c.synackRetrans,
    enqueued: seesEnqueues ? c.enqueues : null,
  };
  if (inferred) row.overflows_inferred = true;
  return row;
}

/**
 * Do two rows hold the same figures? The collector then shows a listener's
 * previous row object again (views may keep per-row work, such as its JSON
 * text, by identity). Every field of ListenerRow is compared: the unit test
 * changes each field of a row in turn and expects false.
 */
export function sameRow(a: ListenerRow, b: ListenerRow): boolean {
  return a.accept_queue === b.accept_queue && a.accept_queue_max === b.accept_queue_max && a.accept_limit === b.accept_limit &&
    a.syn_queue === b.syn_queue && a.syn_queue_max === b.syn_queue_max && a.syn_limit === b.syn_limit &&
    a.overflows === b.overflows && a.drops === b.drops && a.syncookies === b.syncookies && a.synack_retrans === b.synack_retrans &&
    a.enqueued === b.enqueued && a.overflows_inferred === b.overflows_inferred &&
    a.pid === b.pid && a.comm === b.comm && a.container === b.container &&
    a.addr === b.addr && a.port === b.port && a.family === b.family && a.netns === b.netns;
}

/**
 * Would buildRow() give `row` again? Answered without building one, for the
 * common case at scale: a quiet listener (nothing counted, the same queue
 * lengths and drop counter as the previous snapshot) whose row was built
 * from the same quiet state. Then the row is what buildRow makes of equal
 * inputs: maxima equal to the lengths, nothing dropped or counted. False
 * whenever that is not certain (the caller then builds the row). The unit
 * test checks it against sameRow(row, buildRow(...)) over many inputs.
 */
export function quietRowHolds(now: ListenerSnapshot, prev: Pick<ListenerSnapshot, 'acceptQueue' | 'synQueue' | 'skDrops'> | undefined, c: Counted, row: ListenerRow | undefined,
  perSyn: boolean, sys: SynSysctls, seesEnqueues: boolean, owner: { pid: number; comm: string } | null, container: string | null): boolean {
  if (row === undefined || prev === undefined || c !== QUIET) return false;
  if (now.acceptQueue !== prev.acceptQueue || now.synQueue !== prev.synQueue || now.skDrops !== prev.skDrops) return false;
  return row.accept_queue === now.acceptQueue && row.accept_queue_max === now.acceptQueue && row.accept_limit === now.acceptLimit &&
    row.syn_queue === now.synQueue && row.syn_queue_max === now.synQueue && row.syn_limit === synLimit(now.acceptLimit, sys.syncookies, sys.maxSynBacklog) &&
    row.overflows === 0 && row.drops === 0 && row.synack_retrans === 0 && row.overflows_inferred === undefined &&
    row.syncookies === (perSyn ? 0 : null) && row.enqueued === (seesEnqueues ? 0 : null) &&
    row.pid === (owner ? owner.pid : null) && row.comm === (owner ? owner.comm : null) && row.container === container &&
    row.port === now.port && row.addr === now.addr && row.netns === now.netns && row.family === (now.family === AF_INET6 ? 'ipv6' : 'ipv4');
}

/** The counts of a listener nothing happened to (shared: compared by identity in quietRowHolds). */
export const QUIET: Readonly<Counted> = Object.freeze(emptyCounted());

/** Accept queue fill this interval, 0..n (most seen / limit); a zero limit counts as full when anything queued. */
export function fillOf(r: Pick<ListenerRow, 'accept_queue_max' | 'accept_limit'>): number {
  return r.accept_limit > 0 ? r.accept_queue_max / r.accept_limit : r.accept_queue_max > 0 ? Infinity : 0;
}

/**
 * Order for the views that cannot show every listener: those in trouble
 * first (overflows, then drops), then by accept queue fill, SYN queue fill,
 * then by port and address so that quiet listeners keep a stable place.
 */
export function compareByImportance(a: ListenerRow, b: ListenerRow): number {
  return (b.overflows - a.overflows) || (b.drops - a.drops) || (fillOf(b) - fillOf(a)) ||
    (synFill(b) - synFill(a)) || (a.port - b.port) || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0) || (a.netns - b.netns);
}

function synFill(r: ListenerRow): number {
  return r.syn_limit > 0 ? r.syn_queue_max / r.syn_limit : 0;
}

/** The `n` most important rows (partial selection: no full sort of 10,000 rows for 40 shown). */
export function topRows(rows: ListenerRow[], n: number): ListenerRow[] {
  if (n <= 0) return [];
  if (rows.length <= n) return [...rows].sort(compareByImportance);
  const top: ListenerRow[] = [];
  for (const r of rows) {
    if (top.length === n && compareByImportance(r, top[n - 1]) >= 0) continue;
    if (top.length === n) top.pop();
    let i = top.length;
    while (i > 0 && compareByImportance(r, top[i - 1]) < 0) i--;
    top.splice(i, 0, r);
  }
  return top;
}
