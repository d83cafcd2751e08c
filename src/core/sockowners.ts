// Which process owns a socket: scan /proc/PID/fd for links to "socket:[INO]",
// as ss -p and lsof do. A socket shared by several processes (a forking
// server's listener) is reported with its lowest pid. The scan is not cheap
// on a busy machine, so SocketOwners caches and rescans only for inodes it
// has not seen yet, and at most once per `minRescanMs`.
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';

export interface SocketOwner {
  pid: number;
  comm: string;
}

/** inode -> owner, for every socket any process has open (only those in `want`, if given). */
export function scanSocketOwners(want?: Set<number>): Map<number, SocketOwner> {
  const out = new Map<number, SocketOwner>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  pids.sort((a, b) => Number(a) - Number(b));
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (!m) continue;
      const ino = Number(m[1]);
      if (out.has(ino) || (want && !want.has(ino))) continue;
      out.set(ino, { pid: Number(p), comm: readComm(p) });
    }
  }
  return out;
}

function readComm(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export class SocketOwners {
  private readonly known = new Map<number, SocketOwner | null>();
  private lastScan = 0;

  constructor(private readonly minRescanMs = 2000) {}

  /** Owners of these inodes (null: no process has it open, or it was not found). */
  lookup(inodes: number[]): Map<number, SocketOwner | null> {
    const missing = inodes.filter((i) => i && !this.known.has(i));
    if (missing.length && Date.now() - this.lastScan >= this.minRescanMs) this.rescan(new Set(missing));
    const out = new Map<number, SocketOwner | null>();
    for (const i of inodes) out.set(i, this.known.get(i) ?? null);
    return out;
  }

  /** Forget the cache (e.g. when a pid filter needs fresh owners). */
  rescan(want?: Set<number>): void {
    this.lastScan = Date.now();
    const found = scanSocketOwners(want);
    for (const i of want ?? []) this.known.set(i, found.get(i) ?? null);
    if (!want) for (const [i, o] of found) this.known.set(i, o);
  }
}
