// opensnoop's readings: the only code that reads its ring buffer. Each record
// becomes an OpenRow: the call as the kernel saw it, the name made absolute
// where it can be (resolve.ts), and the process's cgroup at the call.
import { bytesJson } from '../../core/output/json.js';
import { CgroupPaths, cgroupFields, type CgroupFields } from '../../core/linux/cgroup.js';
import { open_event_layout as layout, DEFINES, ENUMS } from '../../generated/opensnoop.js';
import { PathResolver, type Unresolved } from './resolve.js';

export const SYSCALL_NAMES: Record<number, string> = {
  [ENUMS.OPEN_OPEN]: 'open', [ENUMS.OPEN_OPENAT]: 'openat', [ENUMS.OPEN_OPENAT2]: 'openat2',
};

/** One completed open call. */
export interface OpenRow extends CgroupFields {
  ts_ns: number;
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  comm: Uint8Array;
  syscall: string;
  /** AT_FDCWD (-100) for open() and for *at() calls relative to the cwd. */
  dirfd: number;
  /** fd, or -errno. */
  ret: number;
  flags: number;
  mode: number;
  /** The name as passed, its exact bytes. */
  path: Uint8Array;
  /** The name filled the 4096-byte buffer and went on (the call fails with ENAMETOOLONG). */
  pathCut: boolean;
  /** The name could not be read (a bad pointer: the call fails with EFAULT). */
  pathUnread: boolean;
  /** The absolute path, when the name is absolute or its directory could be named. */
  fullPath?: Uint8Array;
  unresolved?: Unresolved;
}

const enc = new TextEncoder();

export class OpenCollector {
  private readonly resolver = new PathResolver();
  private readonly cgroups = new CgroupPaths();

  /** Whether the host has containers (a table fixes its columns before the first event). */
  hasContainers(containerOf: (p: string) => string | null): boolean {
    return [...this.cgroups.known()].some((p) => containerOf(p) !== null);
  }

  /** Decode one ring-buffer record. Reads only the path's bytes that were sent. */
  decode(rec: DataView): OpenRow {
    const len = Math.min(layout.read(rec, 'path_len'), DEFINES.OPENSNOOP_PATHSIZE, rec.byteLength - layout.fields.path.offset);
    const path = layout.bytes(rec, 'path', Math.max(0, len)).slice();
    const commBytes = layout.bytes(rec, 'comm');
    const nul = commBytes.indexOf(0);
    const eventFlags = layout.read(rec, 'event_flags');
    const row: OpenRow = {
      ts_ns: layout.read(rec, 'ts_ns'),
      pid: layout.read(rec, 'pid'),
      tid: layout.read(rec, 'tid'),
      ppid: layout.read(rec, 'ppid'),
      uid: layout.read(rec, 'uid'),
      comm: (nul < 0 ? commBytes : commBytes.subarray(0, nul)).slice(),
      syscall: SYSCALL_NAMES[layout.read(rec, 'syscall')] ?? 'open?',
      dirfd: layout.read(rec, 'dirfd'),
      ret: layout.read(rec, 'ret'),
      flags: layout.read(rec, 'flags'),
      mode: layout.read(rec, 'mode'),
      path,
      pathCut: (eventFlags & ENUMS.OPEN_PATH_CUT) !== 0,
      pathUnread: (eventFlags & ENUMS.OPEN_PATH_UNREAD) !== 0,
      ...cgroupFields(this.cgroups.pathOf(layout.read(rec, 'cgroup_id'))),
    };
    if (row.pathUnread) return { ...row, unresolved: 'not read' };
    // Paths are bytes; resolution works on their text, and only when it is
    // exactly that text (not UTF-8: left as given, marked).
    const name = bytesJson(path);
    if (name.base64 !== undefined) return path[0] === 0x2f ? { ...row, fullPath: path } : { ...row, unresolved: 'name not UTF-8' };
    const r = this.resolver.resolve({
      pid: row.pid, tid: row.tid, ppid: row.ppid, dirfd: row.dirfd, dirIno: layout.read(rec, 'dir_ino'), name: name.text,
      atFdcwd: DEFINES.OPENSNOOP_AT_FDCWD,
    });
    if (r.full === undefined) return { ...row, unresolved: r.unresolved };
    return { ...row, fullPath: r.full === name.text ? path : enc.encode(r.full) };
  }
}
