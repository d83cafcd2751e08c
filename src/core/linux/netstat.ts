// System network counters (/proc/net/netstat, /proc/net/snmp): the kernel's
// MIB counters, as nstat(8) reads them. Values are cumulative since boot
// (per network namespace); NetstatDeltas turns them into per-interval deltas.
import { readFileSync } from 'node:fs';

/** Every counter of a /proc/net/{netstat,snmp} file, as 'TcpExt.ListenDrops' -> value. */
export function readNetCounters(path = '/proc/net/netstat'): Map<string, number> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  // Lines come in pairs: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/).filter(Boolean);
    const values = lines[i + 1].split(/\s+/).filter(Boolean);
    const group = names[0]?.replace(/:$/, '');
    if (!group || values[0] !== names[0]) continue;
    for (let j = 1; j < names.length && j < values.length; j++) out.set(`${group}.${names[j]}`, Number(values[j]));
  }
  return out;
}

/** Deltas of chosen counters between successive take() calls. */
export class NetstatDeltas {
  private last: Map<string, number>;

  /** `names`: e.g. ['TcpExt.ListenOverflows']; the key in take()'s result drops the group. */
  constructor(private readonly names: string[], private readonly path = '/proc/net/netstat') {
    this.last = readNetCounters(path);
  }

  take(): Record<string, number> {
    const now = readNetCounters(this.path);
    const out: Record<string, number> = {};
    for (const n of this.names) {
      const key = n.replace(/^[^.]*\./, '');
      out[key] = Math.max(0, (now.get(n) ?? 0) - (this.last.get(n) ?? 0));
    }
    this.last = now;
    return out;
  }
}
