// tcpretrans's readings: the only code that reads its maps and ring buffer.
import type { BpfObject } from '../../core/bpf/object.js';
import { AF_INET6, formatAddr, tcpStateName } from '../../core/linux/inet.js';
import { errnoName } from '../../core/linux/names.js';
import { ENUMS, tcpretrans_event_layout as layout, type SKELETON, type TcpretransCounts, type TcpretransFlow } from '../../generated/tcpretrans.js';

export type Kind = 'retrans' | 'synack' | 'tlp';

/** A connection's ends, as printed. */
export interface Flow {
  netns: number;
  family: 'ipv4' | 'ipv6';
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
}

export interface RetransEvent extends Flow {
  ts_ns: number;
  kind: Kind;
  state: string;
  segs: number;
  /** The errno name of a failed retransmit (6.16+ reports them), else null. */
  error: string | null;
}

export type Counts = TcpretransCounts;

export interface FlowRow extends Flow, Counts {}

export interface NetnsRow extends Counts {
  netns: number;
}

const KINDS: Record<number, Kind> = { [ENUMS.TR_RETRANS]: 'retrans', [ENUMS.TR_SYNACK]: 'synack', [ENUMS.TR_TLP]: 'tlp' };

function flowOf(f: TcpretransFlow): Flow {
  return {
    netns: f.netns,
    family: f.family === AF_INET6 ? 'ipv6' : 'ipv4',
    laddr: formatAddr(f.family, f.laddr), lport: f.lport,
    raddr: formatAddr(f.family, f.raddr), rport: f.rport,
  };
}

export function decodeEvent(view: DataView): RetransEvent {
  const e = layout.decode(view);
  return {
    ts_ns: e.ts_ns,
    kind: KINDS[e.kind] ?? 'retrans',
    state: tcpStateName(e.state),
    segs: e.segs,
    error: e.err ? errnoName(-e.err) : null,
    ...flowOf(e.flow),
  };
}

/** The maps tcpretrans reads, typed from the skeleton. */
export function tcpretransMaps(obj: BpfObject<typeof SKELETON>) {
  return { flows: obj.typedMap('flows'), netns: obj.typedMap('netns_counts') };
}

export type TcpretransMaps = ReturnType<typeof tcpretransMaps>;

/** -c: every connection's counts since load (per-CPU values summed). */
export function readFlows(maps: TcpretransMaps): FlowRow[] {
  return maps.flows.entries().map(([k, v]) => ({ ...flowOf(k), ...v }));
}

/** Per network namespace, counts since load. */
export function readNetns(maps: TcpretransMaps): NetnsRow[] {
  return maps.netns.entries().map(([k, v]) => ({ netns: k.value, ...v }));
}
