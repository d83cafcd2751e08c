// tcplife's readings: the only code that reads its ring buffer. One record
// per closed connection, decoded with the generated layout.
import { AF_INET6, formatAddr, tcpStateName } from '../../core/linux/inet.js';
import { ENUMS, tcplife_event_layout as layout } from '../../generated/tcplife.js';

/** Where a connection's pid and comm come from (tcplife.h enum tcplife_owner). */
export type Owner = 'connect' | 'close' | 'current';

/** One closed connection. */
export interface Connection {
  ts_ns: number;
  pid: number;
  comm: string;
  owner: Owner;
  family: 'ipv4' | 'ipv6';
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  /** Bytes the peer acknowledged (tcp_sock.bytes_acked). */
  tx_bytes: number;
  /** Bytes received in order (tcp_sock.bytes_received). */
  rx_bytes: number;
  /** From establishment (or SYN_SENT/SYN_RECV if never established) to close. */
  duration_ns: number;
  /** The state it closed from. */
  closed_from: string;
  netns: number;
  cgroup_id: number;
}

const OWNERS: Record<number, Owner> = {
  [ENUMS.TL_OWNER_CONNECT]: 'connect',
  [ENUMS.TL_OWNER_CLOSE]: 'close',
  [ENUMS.TL_OWNER_CURRENT]: 'current',
};

export function decodeConnection(view: DataView): Connection {
  const e = layout.decode(view);
  return {
    ts_ns: e.ts_ns,
    pid: e.pid,
    comm: e.comm,
    owner: OWNERS[e.owner] ?? 'current',
    family: e.family === AF_INET6 ? 'ipv6' : 'ipv4',
    laddr: formatAddr(e.family, e.laddr),
    lport: e.lport,
    raddr: formatAddr(e.family, e.raddr),
    rport: e.rport,
    tx_bytes: e.tx_bytes,
    rx_bytes: e.rx_bytes,
    duration_ns: e.span_ns,
    closed_from: tcpStateName(e.oldstate),
    netns: e.netns,
    cgroup_id: e.cgroup_id,
  };
}
