// Which process owns a socket: scan /proc/PID/fd for links to "socket:[INO]",
// as ss -p and lsof do. Socket inodes are global (sockfs), so this works for
// sockets of every network namespace. A socket shared by several processes
// (a forking server's listener) is reported with its lowest pid.
//
// The scan is what costs on a busy machine (one readlink per open fd: a node
// with 10,000 listeners has at least 10,000), so SocketOwners caches owners
// by inode and, when it meets inodes it does not know, rescans
// incrementally: every process's fd directory is listed (one readdir each),
// but only fds it has not seen before in that process are readlink'ed. A
// full rescan (an fd number closed and reused for another socket) happens
// only for inodes still unknown after that, at most every `fullRescanMs`.
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';

export interface SocketOwner {
  pid: number;
  comm: string;
}

/** inode -> owner, for every socket any process has open (only those in `want`, if given). */
export function scanSocketOwners(want?: Set<number>): Map<number, SocketOwner> {
  return new OwnerScanner().scan(want, true);
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

const SOCKET_LINK = /^socket:\[(\d+)\]$/;

/** Remembers, per process, the fds it has already read (fd -> socket inode, or 0 for anything else). */
class OwnerScanner {
  private readonly fdsOf = new Map<number, Map<string, number>>();

  scan(want: Set<number> | undefined, full: boolean): Map<number, SocketOwner> {
    const out = new Map<number, SocketOwner>();
    let pids: number[];
    try {
      pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
    } catch {
      return out;
    }
    const alive = new Set<number>();
    for (const pid of pids) {
      alive.add(pid);
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue; // gone, or not ours to read
      }
      let known = this.fdsOf.get(pid);
      if (!known || full) {
        known = new Map();
        this.fdsOf.set(pid, known);
      }
      let comm: string | undefined;
      for (const fd of fds) {
        let ino = known.get(fd);
        if (ino === undefined) {
          ino = 0;
          try {
            const m = SOCKET_LINK.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
            if (m) ino = Number(m[1]);
          } catch {
            continue; // closed meanwhile
          }
          known.set(fd, ino);
        }
        if (!ino || out.has(ino) || (want && !want.has(ino))) continue;
        comm ??= readComm(pid);
        out.set(ino, { pid, comm });
      }
      if (known.size > fds.length) {
        const open = new Set(fds);
        for (const fd of known.keys()) if (!open.has(fd)) known.delete(fd);
      }
    }
    for (const pid of this.fdsOf.keys()) if (!alive.has(pid)) this.fdsOf.delete(pid);
    return out;
  }
}

export class SocketOwners {
  private readonly known = new Map<number, SocketOwner | null>();
  private readonly scanner = new OwnerScanner();
  private lastScan = 0;
  // The first scan reads every fd anyway: no full one right after it.
  private lastFull = Date.now();

  constructor(private readonly minRescanMs = 2000, private readonly fullRescanMs = 10000) {}

  /**
   * Owners of these inodes (null: no process has it open, or it was not
   * found). Inodes not asked for are forgotten: call it with every socket
   * of interest at once.
   */
  lookup(inodes: number[]): Map<number, SocketOwner | null> {
    const missing = new Set<number>();
    for (const i of inodes) if (i && !this.known.has(i)) missing.add(i);
    if (missing.size && Date.now() - this.lastScan >= this.minRescanMs) this.rescan(missing);
    const out = new Map<number, SocketOwner | null>();
    for (const i of inodes) out.set(i, this.known.get(i) ?? null);
    if (this.known.size > out.size) for (const i of this.known.keys()) if (!out.has(i)) this.known.delete(i);
    return out;
  }

  /**
   * The same as lookup() without building a result: make the owners of these
   * inodes known (get() answers), and forget those of inodes not given.
   */
  update(inodes: number[]): void {
    let missing: Set<number> | undefined;
    for (const i of inodes) if (i && !this.known.has(i)) (missing ??= new Set()).add(i);
    if (missing && Date.now() - this.lastScan >= this.minRescanMs) this.rescan(missing);
    if (this.known.size > inodes.length * 2 + 64) {
      const keep = new Set(inodes);
      for (const i of this.known.keys()) if (!keep.has(i)) this.known.delete(i);
    }
  }

  /** The owner of a socket known to update() (null: none, or not found). */
  get(inode: number): SocketOwner | null {
    return this.known.get(inode) ?? null;
  }

  /** Look for these inodes' owners now (incrementally; fully when some are still missing and it is time). */
  rescan(want: Set<number>): void {
    this.lastScan = Date.now();
    const found = this.scanner.scan(want, false);
    let stillMissing = false;
    for (const i of want) if (!found.has(i)) stillMissing = true;
    if (stillMissing && Date.now() - this.lastFull >= this.fullRescanMs) {
      this.lastFull = Date.now();
      for (const [i, o] of this.scanner.scan(want, true)) found.set(i, o);
    }
    for (const i of want) this.known.set(i, found.get(i) ?? null);
  }
}
