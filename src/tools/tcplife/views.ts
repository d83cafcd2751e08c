// tcplife's views: a closed connection (collect.ts) as bcc tcplife's line,
// an NDJSON record, and saved figures. Pure: the caller gives the clock's
// readings and the cgroup fields.
import { ColumnPrinter, type Column } from '../../core/output/table.js';
import type { Cell } from '../../core/output/format.js';
import type { CgroupFields } from '../../core/linux/cgroup.js';
import type { Connection } from './collect.js';

export interface LineMode {
  /** -T: wall-clock time column. */
  time: boolean;
  /** -t: seconds since rbtrace started. */
  timestamp: boolean;
  /** -w: addresses wide enough for any IPv6 address. */
  wide: boolean;
  /** Only IPv4 (-4): bcc's 15-character address columns. */
  ipv4Only: boolean;
  /** CONTAINER / CGROUP columns (src/core/cgroup.ts cgroupColumns). */
  cgroupHeaders: string[];
}

/** bcc's layout: PID COMM LADDR LPORT RADDR RPORT TX_KB RX_KB MS, then NETNS (and CONTAINER/CGROUP). */
export function connectionPrinter(mode: LineMode): ColumnPrinter {
  const addr = mode.wide ? 39 : mode.ipv4Only ? 15 : 26;
  const columns: Column[] = [];
  if (mode.time) columns.push({ name: 'TIME', width: 8 });
  if (mode.timestamp) columns.push({ name: 'TIME(s)', width: 9 });
  columns.push(
    { name: 'PID', width: 7, align: 'right' }, { name: 'COMM', width: mode.wide ? 15 : 10 },
    { name: 'LADDR', width: addr }, { name: 'LPORT', width: 5, align: 'right' },
    { name: 'RADDR', width: addr }, { name: 'RPORT', width: 5, align: 'right' },
    { name: 'TX_KB', width: 6, align: 'right' }, { name: 'RX_KB', width: 6, align: 'right' },
    { name: 'MS', width: 10, align: 'right' }, { name: 'NETNS', width: 10, align: 'right' },
    ...mode.cgroupHeaders.map((name) => ({ name, width: name === 'CGROUP' ? 24 : 12 })),
  );
  return new ColumnPrinter(columns);
}

/** One line's cells (the printer escapes strings: comm and cgroup come from the traced system). */
export function connectionCells(c: Connection, when: { clock?: string; seconds?: number }, mode: LineMode, cgroupCells: string[]): Cell[] {
  const row: Cell[] = [];
  if (mode.time) row.push(when.clock);
  if (mode.timestamp) row.push(when.seconds?.toFixed(3));
  // bcc truncates COMM to 10 characters; -w shows all 15.
  const comm = mode.wide ? c.comm : c.comm.slice(0, 10);
  row.push(c.pid, comm, c.laddr, c.lport, c.raddr, c.rport,
    Math.floor(c.tx_bytes / 1024), Math.floor(c.rx_bytes / 1024), (c.duration_ns / 1e6).toFixed(2), c.netns, ...cgroupCells);
  return row;
}

/** The NDJSON record: exact bytes and nanoseconds. */
export function connectionRecord(c: Connection, time: Date, cg: CgroupFields): object {
  return {
    time: time.toISOString(),
    pid: c.pid, comm: c.comm, owner: c.owner,
    family: c.family, laddr: c.laddr, lport: c.lport, raddr: c.raddr, rport: c.rport,
    tx_bytes: c.tx_bytes, rx_bytes: c.rx_bytes,
    duration_ns: c.duration_ns, duration_ms: c.duration_ns / 1e6,
    closed_from: c.closed_from,
    netns: c.netns, ...cg,
  };
}

/** Figures for --save/--assert (common/figures.ts TCPLIFE): one connection, under its comm. */
export function connectionFigures(c: Connection): object {
  return { connections: [{ comm: c.comm, count: 1, tx_bytes: c.tx_bytes, rx_bytes: c.rx_bytes, duration_ns: c.duration_ns }] };
}
