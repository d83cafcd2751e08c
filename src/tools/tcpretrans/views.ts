// tcpretrans's views: an event (collect.ts) as bcc tcpretrans's line, -c's
// table of counts per connection, NDJSON records and saved figures. Pure.
import { ColumnPrinter, renderTable } from '../../core/output/table.js';
import { formatEndpoint } from '../../core/linux/inet.js';
import type { Cell } from '../../core/output/format.js';
import type { FlowRow, NetnsRow, RetransEvent } from './collect.js';

/** bcc's T column: R retransmit, L tail-loss probe; F a failed retransmit (6.16+ reports them). */
function typeLetter(e: RetransEvent): string {
  if (e.error) return 'F';
  return e.kind === 'tlp' ? 'L' : 'R';
}

/** bcc's layout (TIME IP LADDR:LPORT T> RADDR:RPORT STATE), with NETNS; no PID (see the man page). */
export function eventPrinter(): ColumnPrinter {
  const ep = 22;
  return new ColumnPrinter([
    { name: 'TIME', width: 8 }, { name: 'IP', width: 2 }, { name: 'LADDR:LPORT', width: ep }, { name: 'T>', width: 2 },
    { name: 'RADDR:RPORT', width: ep }, { name: 'STATE', width: 12 }, { name: 'NETNS', width: 0 },
  ]);
}

export function eventCells(e: RetransEvent, clock: string): Cell[] {
  return [clock, e.family === 'ipv6' ? 6 : 4, formatEndpoint(e.laddr, e.lport), `${typeLetter(e)}>`, formatEndpoint(e.raddr, e.rport), e.state, e.netns];
}

export function eventRecord(e: RetransEvent, time: Date): object {
  return {
    time: time.toISOString(), type: e.kind, ...(e.error ? { error: e.error } : {}), state: e.state, segs: e.segs,
    family: e.family, laddr: e.laddr, lport: e.lport, raddr: e.raddr, rport: e.rport, netns: e.netns,
  };
}

/** -c: bcc's LADDR:LPORT <-> RADDR:RPORT RETRANSMITS, most first, with TLPS (-l) and NETNS. */
export function flowTable(rows: FlowRow[], tlp: boolean): string {
  const sorted = [...rows].sort((a, b) => (b.retrans + b.synack + b.tlp) - (a.retrans + a.synack + a.tlp));
  const headers = ['LADDR:LPORT', '', 'RADDR:RPORT', 'RETRANSMITS', ...(tlp ? ['TLPS'] : []), 'NETNS'];
  const body = sorted.map((r) => [formatEndpoint(r.laddr, r.lport), '<->', formatEndpoint(r.raddr, r.rport), r.retrans + r.synack, ...(tlp ? [r.tlp] : []), r.netns]);
  return renderTable(headers, body, { align: ['left', 'left', 'left', 'right', 'right', 'right'] });
}

export function flowRecord(rows: FlowRow[], time: Date): object {
  return { time: time.toISOString(), connections: rows };
}

/** Figures for --save/--assert (common/figures.ts TCPRETRANS): per namespace, from the kernel's counts. */
export function netnsFigures(rows: NetnsRow[]): object {
  return { namespaces: rows.map((r) => ({ ...r, netns: String(r.netns) })) };
}
