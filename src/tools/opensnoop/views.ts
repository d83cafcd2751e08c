// opensnoop's views: an OpenRow (collect.ts) as bcc opensnoop's line, an
// NDJSON record, and figures for --save/--assert. Pure: no ring buffer, no
// /proc, no clock.
import { escapeBytesForTerminal, styled, type Cell } from '../../core/output/format.js';
import { bytesJson } from '../../core/output/json.js';
import { errnoName } from '../../core/linux/names.js';
import type { Column } from '../../core/output/table.js';
import type { CgroupFields } from '../../core/linux/cgroup.js';
import type { OpenRow } from './collect.js';

/** open(2) flag bits that differ between x86_64 (the generic values) and arm64. */
const ARCH_FLAGS: Record<'x64' | 'arm64', [string, number][]> = {
  x64: [['O_DIRECT', 0o40000], ['O_LARGEFILE', 0o100000], ['O_DIRECTORY', 0o200000], ['O_NOFOLLOW', 0o400000]],
  arm64: [['O_DIRECTORY', 0o40000], ['O_NOFOLLOW', 0o100000], ['O_DIRECT', 0o200000], ['O_LARGEFILE', 0o400000]],
};

const O_CREAT = 0o100;
const O_DSYNC = 0o10000;
const O_SYNC_BITS = 0o4000000 | O_DSYNC;
const O_TMPFILE_BIT = 0o20000000;

/** The flag names strace prints, in value order, for an arch. */
function flagTable(arch: 'x64' | 'arm64'): [string, number][] {
  return [
    ['O_CREAT', O_CREAT], ['O_EXCL', 0o200], ['O_NOCTTY', 0o400], ['O_TRUNC', 0o1000], ['O_APPEND', 0o2000],
    ['O_NONBLOCK', 0o4000], ['O_ASYNC', 0o20000], ...ARCH_FLAGS[arch],
    ['O_NOATIME', 0o1000000], ['O_CLOEXEC', 0o2000000], ['O_PATH', 0o10000000],
  ].sort((a, b) => (a[1] as number) - (b[1] as number)) as [string, number][];
}

/** Every flag name -f takes, with its value for this arch. */
export function flagValues(arch: 'x64' | 'arm64'): Map<string, number> {
  const dir = ARCH_FLAGS[arch].find(([n]) => n === 'O_DIRECTORY')![1];
  return new Map<string, number>([
    ['O_RDONLY', 0], ['O_WRONLY', 1], ['O_RDWR', 2], ...flagTable(arch),
    ['O_DSYNC', O_DSYNC], ['O_SYNC', O_SYNC_BITS], ['O_TMPFILE', O_TMPFILE_BIT | dir],
  ]);
}

/** Does a call's flags include `value` (a -f flag)? The access modes are compared whole. */
export function hasFlag(flags: number, name: string, value: number): boolean {
  if (name === 'O_RDONLY' || name === 'O_WRONLY' || name === 'O_RDWR') return (flags & 3) === value;
  return (flags & value) === value;
}

/** Flags as strace prints them: O_RDONLY|O_CLOEXEC; unknown bits in octal. */
export function decodeFlags(flags: number, arch: 'x64' | 'arm64'): string {
  const parts = [['O_RDONLY', 'O_WRONLY', 'O_RDWR', '03'][flags & 3]];
  let rest = flags & ~3;
  const dir = ARCH_FLAGS[arch].find(([n]) => n === 'O_DIRECTORY')![1];
  const tmpfile = O_TMPFILE_BIT | dir;
  for (const [name, value] of flagTable(arch)) {
    if (value === O_SYNC_BITS) continue;
    if ((rest & tmpfile) === tmpfile && value === dir) continue; // shown as O_TMPFILE below
    if (rest & value) {
      parts.push(name);
      rest &= ~value;
    }
  }
  if ((rest & O_SYNC_BITS) === O_SYNC_BITS) {
    parts.push('O_SYNC');
    rest &= ~O_SYNC_BITS;
  } else if (rest & O_DSYNC) {
    parts.push('O_DSYNC');
    rest &= ~O_DSYNC;
  }
  if ((rest & tmpfile) === tmpfile) {
    parts.push('O_TMPFILE');
    rest &= ~tmpfile;
  }
  if (rest) parts.push(`0${rest.toString(8)}`);
  return parts.join('|');
}

/** open(2) takes a mode only with O_CREAT or O_TMPFILE. */
export function modeApplies(flags: number, arch: 'x64' | 'arm64'): boolean {
  const dir = ARCH_FLAGS[arch].find(([n]) => n === 'O_DIRECTORY')![1];
  return (flags & O_CREAT) !== 0 || (flags & (O_TMPFILE_BIT | dir)) === (O_TMPFILE_BIT | dir);
}

/** One open, as --json prints it. */
export interface OpenRecord extends CgroupFields {
  time: string;
  ts_ns: number;
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  comm: string;
  comm_base64?: string;
  syscall: string;
  /** *at() calls: the directory fd, or AT_FDCWD. */
  dirfd?: number | 'AT_FDCWD';
  /** The fd, or -1 when the call failed. */
  fd: number;
  /** The errno name of a failed call. */
  errno?: string;
  /** -errno of a failed call, else the fd (the syscall's return). */
  ret: number;
  flags: number;
  flags_text: string;
  /** With O_CREAT or O_TMPFILE only. */
  mode?: string;
  /** The name as passed. */
  path: string;
  path_base64?: string;
  path_cut?: true;
  path_unread?: true;
  /** The absolute path: the name, or the name joined to its directory; null when that directory could not be named. */
  full_path: string | null;
  full_path_base64?: string;
  /** Why full_path is null. */
  unresolved?: string;
}

export function openRecord(r: OpenRow, time: string, arch: 'x64' | 'arm64'): OpenRecord {
  const comm = bytesJson(r.comm);
  const path = bytesJson(r.path);
  const full = r.fullPath ? bytesJson(r.fullPath) : undefined;
  return {
    time, ts_ns: r.ts_ns, pid: r.pid, tid: r.tid, ppid: r.ppid, uid: r.uid,
    comm: comm.text, comm_base64: comm.base64,
    syscall: r.syscall,
    dirfd: r.syscall === 'open' ? undefined : r.dirfd === -100 ? 'AT_FDCWD' : r.dirfd,
    fd: r.ret >= 0 ? r.ret : -1,
    errno: r.ret < 0 ? errnoName(-r.ret) : undefined,
    ret: r.ret,
    flags: r.flags,
    flags_text: decodeFlags(r.flags, arch),
    mode: modeApplies(r.flags, arch) ? `0${(r.mode & 0o7777).toString(8).padStart(3, '0')}` : undefined,
    path: path.text, path_base64: path.base64,
    path_cut: r.pathCut || undefined,
    path_unread: r.pathUnread || undefined,
    full_path: full ? full.text : null,
    full_path_base64: full?.base64,
    unresolved: r.unresolved,
    cgroup: r.cgroup, container: r.container,
  };
}

/** What the text view shows, from the options. */
export interface LineMode {
  timestamp: boolean; // -T
  printUid: boolean;  // -U
  byTid: boolean;     // -t: TID instead of PID
  extended: boolean;  // -e
  asGiven: boolean;   // --as-given: PATH as passed
}

/** bcc opensnoop's columns: [TIME(s)] [UID] PID COMM FD ERR [FLAGS MODE] [cgroup columns] PATH. */
export function columns(mode: LineMode, cgHeaders: string[]): Column[] {
  const cols: Column[] = [];
  if (mode.timestamp) cols.push({ name: 'TIME(s)', width: 12 });
  if (mode.printUid) cols.push({ name: 'UID', width: 6 });
  cols.push({ name: mode.byTid ? 'TID' : 'PID', width: 7 }, { name: 'COMM', width: 16 }, { name: 'FD', width: 4, align: 'right' },
    { name: 'ERR', width: 6, align: 'left' });
  if (mode.extended) cols.push({ name: 'FLAGS', width: 34 }, { name: 'MODE', width: 4 });
  cols.push(...cgHeaders.map((name) => ({ name, width: name === 'CGROUP' ? 24 : 12 })), { name: 'PATH', width: 0 });
  return cols;
}

/**
 * The PATH cell: the absolute path, else the name as passed marked with why
 * its directory is unknown. Escaped: a path is one line whatever its bytes.
 */
export function pathCell(r: OpenRow, asGiven: boolean): string {
  const cut = r.pathCut ? '...' : '';
  if (r.pathUnread) return '[name not readable]';
  if (asGiven || r.fullPath) return escapeBytesForTerminal(asGiven ? r.path : r.fullPath!) + cut;
  return `${escapeBytesForTerminal(r.path)}${cut} [${r.unresolved ?? 'unresolved'}]`;
}

export function lineCells(r: OpenRow, mode: LineMode, arch: 'x64' | 'arm64', seconds: number, cgCells: string[]): Cell[] {
  const row: Cell[] = [];
  if (mode.timestamp) row.push(seconds.toFixed(6));
  if (mode.printUid) row.push(r.uid);
  row.push(mode.byTid ? r.tid : r.pid, styled(escapeBytesForTerminal(r.comm)), r.ret >= 0 ? r.ret : -1, r.ret >= 0 ? '0' : errnoName(-r.ret));
  if (mode.extended) row.push(decodeFlags(r.flags, arch), modeApplies(r.flags, arch) ? (r.mode & 0o7777).toString(8).padStart(4, '0') : 'n/a');
  row.push(...cgCells, styled(pathCell(r, mode.asGiven)));
  return row;
}

/** Figures for --save/--assert (common/figures.ts OPENSNOOP): one open per comm and result. */
export function openFigures(r: { comm: string; ret: number }): object {
  return { opens: [{ comm: r.comm, result: r.ret >= 0 ? 'ok' : errnoName(-r.ret), count: 1 }] };
}
