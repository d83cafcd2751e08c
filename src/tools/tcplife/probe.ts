// tcplife's probe: the attach paths of src/bpf/tcplife.bpf.c (one program,
// on sock:inet_sock_set_state, three ways to attach it) and the .rodata
// its filters become.
import type { AttachPath } from '../../core/bpf/paths.js';
import type { LoadSpec } from '../../core/tool.js';
import { AF_INET, AF_INET6 } from '../../core/linux/inet.js';
import { DEFINES, SKELETON, type Rodata } from '../../generated/tcplife.js';

export interface TcplifeFilters {
  family?: 'ipv4' | 'ipv6';
  localPorts?: number[];
  remotePorts?: number[];
}

/** The most ports -L (and -D) take: the size of the .rodata list. */
export const MAX_PORTS = DEFINES.TCPLIFE_MAX_PORTS;

/**
 * sock:inet_sock_set_state (4.16+) sees every TCP state change, in every
 * namespace, with the socket: nothing else is needed (bcc's kprobe on
 * tcp_set_state predates it). tp_btf reads the socket without probe_read's
 * cost; raw_tp and the tracefs tracepoint are the fallbacks.
 */
export const PATHS: AttachPath<typeof SKELETON>[] = [
  { name: 'tp_btf', programs: ['tpb_state'], note: 'sock:inet_sock_set_state as a BTF-typed tracepoint' },
  { name: 'raw_tp', programs: ['rt_state'], note: 'sock:inet_sock_set_state raw tracepoint (no tracefs needed)' },
  { name: 'tracepoint', programs: ['tp_state'], note: 'sock:inet_sock_set_state through tracefs' },
];

function portList(ports: number[] | undefined): { n: number; list: number[] } {
  const list = new Array<number>(MAX_PORTS).fill(0);
  (ports ?? []).forEach((p, i) => { list[i] = p; });
  return { n: ports?.length ?? 0, list };
}

export function filterRodata(f: TcplifeFilters): Partial<Rodata> {
  const l = portList(f.localPorts);
  const r = portList(f.remotePorts);
  return {
    targ_family: f.family === 'ipv4' ? AF_INET : f.family === 'ipv6' ? AF_INET6 : 0,
    targ_nlports: l.n, targ_lports: l.list,
    targ_nrports: r.n, targ_rports: r.list,
  };
}

export function loadSpec(f: TcplifeFilters): LoadSpec<typeof SKELETON> {
  return { skeleton: SKELETON, paths: PATHS, rodata: filterRodata(f) };
}
