// Relative names made absolute: the directory a relative open() starts from
// is the cwd of the calling thread (AT_FDCWD) or the file behind dirfd. The
// BPF side sends that directory's inode with the event; here it is named
// through /proc (readlink of /proc/PID/task/TID/cwd or /proc/PID/fd/N), and
// the name is used only if the inode behind it is still that one. So a cwd
// changed since the call, or an fd closed and reused, is never taken for the
// directory of the call: the event is marked unresolved instead.
//
// The paths are those rbtrace sees (its own root), as /proc links show them;
// a process in another mount namespace named its files in its own.
import { readlinkSync, statSync } from 'node:fs';

export type Unresolved = 'process gone' | 'cwd changed' | 'dirfd changed' | 'not read' | 'name not UTF-8';

export interface Resolution {
  full?: string;
  unresolved?: Unresolved;
}

/** Directory inodes (as text) named recently, by any process: the last few thousand. */
const KNOWN_MAX = 4096;

function join(dir: string, name: string): string {
  let rest = name;
  while (rest.startsWith('./')) rest = rest.slice(2);
  if (rest === '.' || rest === '') return dir;
  return dir === '/' ? `/${rest}` : `${dir}/${rest}`;
}

/** The link's target and the inode behind it, or undefined when either is gone. */
function named(link: string): { path: string; ino: bigint } | undefined {
  try {
    const path = readlinkSync(link);
    const ino = statSync(link, { bigint: true }).ino;
    return { path, ino };
  } catch {
    return undefined;
  }
}

function sameInode(path: string, ino: bigint): boolean {
  try {
    return statSync(path, { bigint: true }).ino === ino;
  } catch {
    return false;
  }
}

export class PathResolver {
  /** pid -> its cwd as last named (threads share it but for clone without CLONE_FS: checked by inode). */
  private readonly cwds = new Map<number, { path: string; ino: bigint }>();
  private readonly known = new Map<bigint, string>();

  private remember(ino: bigint, path: string): void {
    this.known.delete(ino);
    this.known.set(ino, path);
    if (this.known.size > KNOWN_MAX) this.known.delete(this.known.keys().next().value!);
  }

  /**
   * The full path of `name` opened by pid/tid relative to dirfd, whose
   * directory had inode `dirIno` at the call (0: the BPF side could not read it).
   */
  resolve(e: { pid: number; tid: number; ppid: number; dirfd: number; dirIno: bigint; name: string; atFdcwd: number }): Resolution {
    if (e.name.startsWith('/')) return { full: e.name };
    if (e.dirIno === 0n) return { unresolved: 'not read' };
    const byCwd = e.dirfd === e.atFdcwd;
    if (byCwd) {
      const cached = this.cwds.get(e.pid);
      if (cached && cached.ino === e.dirIno) return { full: join(cached.path, e.name) };
    }
    const links = byCwd ? [`/proc/${e.pid}/task/${e.tid}/cwd`, `/proc/${e.pid}/cwd`] : [`/proc/${e.pid}/fd/${e.dirfd}`];
    let alive = false;
    for (const link of links) {
      const now = named(link);
      if (!now) continue;
      alive = true;
      this.remember(now.ino, now.path);
      if (now.ino === e.dirIno) {
        if (byCwd) {
          if (this.cwds.size >= KNOWN_MAX) this.cwds.clear(); // exited pids are never told apart
          this.cwds.set(e.pid, now);
        }
        return { full: join(now.path, e.name) };
      }
    }
    // The process is gone, or its directory changed: a child inherits its
    // parent's cwd, and any directory named before by inode will do.
    if (byCwd && !alive) {
      const parent = named(`/proc/${e.ppid}/cwd`);
      if (parent) this.remember(parent.ino, parent.path);
    }
    // Checked again: an inode freed and given to another directory since.
    const seen = this.known.get(e.dirIno);
    if (seen !== undefined) {
      if (sameInode(seen, e.dirIno)) return { full: join(seen, e.name) };
      this.known.delete(e.dirIno);
    }
    if (!alive) return { unresolved: 'process gone' };
    return { unresolved: byCwd ? 'cwd changed' : 'dirfd changed' };
  }
}
