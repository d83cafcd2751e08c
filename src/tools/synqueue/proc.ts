// What synqueue reads from /proc and tracefs besides its BPF maps: sysctls,
// the process tree (for -- CMD), and what this kernel's skb:kfree_skb offers.
import { readFileSync, readdirSync } from 'node:fs';
import type { SynSysctls } from './model.js';

function readSysctl(name: string, fallback: number): number {
  try {
    return Number(readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim());
  } catch {
    return fallback;
  }
}

/** The SYN queue sysctls of the calling thread's network namespace (they are per namespace). */
export function readSynSysctls(): SynSysctls {
  return { syncookies: readSysctl('net.ipv4.tcp_syncookies', 1), maxSynBacklog: readSysctl('net.ipv4.tcp_max_syn_backlog', 1024) };
}

/** Processes descended from `root` (from /proc/PID/stat ppid links). */
export function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        parent.set(Number(d), ppid);
      } catch {
        // gone
      }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Whether skb:kfree_skb names the receiving socket (rx_sk, 6.11+); true when its format cannot be read. */
export function kfreeSkbHasRxSk(): boolean {
  for (const dir of TRACEFS) {
    try {
      return /\brx_sk\b/.test(readFileSync(`${dir}/events/skb/kfree_skb/format`, 'utf8'));
    } catch {
      // try the next
    }
  }
  return true;
}

// skb drop reasons by number, from the running kernel's tracepoint format when
// tracefs is there (the numbering changes between kernels), else a number.
let reasonNames: Map<number, string> | undefined;
export function dropReasonName(n: number): string {
  if (!reasonNames) {
    reasonNames = new Map();
    for (const dir of TRACEFS) {
      try {
        const fmt = readFileSync(`${dir}/events/skb/kfree_skb/format`, 'utf8');
        for (const m of fmt.matchAll(/\{\s*(\d+),\s*"(\w+)"\s*\}/g)) reasonNames.set(Number(m[1]), m[2]);
        break;
      } catch {
        // try the next
      }
    }
  }
  return reasonNames.get(n) ?? `reason ${n}`;
}
