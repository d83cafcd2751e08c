// Opening files that belong to a traced process, safely.
//
// rbtrace runs as root and reads files that unprivileged users control: the
// libraries and executables their processes map. A path from /proc/PID/maps
// names whatever sits at that path *now* (a FIFO that hangs open(), a symlink
// to /dev/zero that never ends), and inside a container it names a file in
// another mount namespace. So a file is opened as the mapped object itself:
//
//   1. /proc/PID/map_files/<range> (the very file of the mapping: needs
//      CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), else /proc/PID/root/<path>
//      (the path in the process's own mount namespace), else, for /proc/PID/exe,
//      that link;
//   2. with O_PATH first: no device driver's open() runs, no FIFO blocks;
//   3. fstat: a regular file, the device and inode /proc/PID/maps shows;
//   4. then reopened for reading through /proc/self/fd/N (O_RDONLY|O_NONBLOCK),
//      which cannot resolve to anything but the checked inode. elf.ts reads
//      only the parts it needs, at most MAX_ELF_READ_BYTES of them, however
//      large the file (a sparse 1 TB file costs nothing).
//
// The descriptor stays open, and /proc/self/fd/N is also the path handed to
// libbpf (uprobe binary_path, USDT): the kernel and libbpf follow that link
// to the checked inode, with no window in which the path could be swapped.
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, readlinkSync, type BigIntStats } from 'node:fs';
import { RbtraceError, errnoText } from '../errors.js';

/** open(2) flags Node has no names for (the same on x86_64, arm64, riscv64). */
const O_PATH = 0o10000000;
const O_NONBLOCK = constants.O_NONBLOCK ?? 0o4000;
const O_NOCTTY = constants.O_NOCTTY ?? 0o400;

/** One line of /proc/PID/maps. */
export interface Mapping {
  /** "7f5c6f5d1000-7f5c6f5d3000": also the name of its /proc/PID/map_files entry. */
  range: string;
  perms: string;
  major: number;
  minor: number;
  inode: bigint;
  /** As the kernel shows it (in the process's mount namespace), " (deleted)" removed. */
  path: string;
  deleted: boolean;
}

const MAPS_LINE = /^([0-9a-f]+-[0-9a-f]+) (\S+) [0-9a-f]+ ([0-9a-f]+):([0-9a-f]+) (\d+)\s+(.*)$/;

/** The file-backed mappings of a process. */
export function readMaps(pid: number): Mapping[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new RbtraceError(`cannot read /proc/${pid}/maps: ${code ?? (err as Error).message}`,
      { hint: code === 'ENOENT' ? 'the process is gone: check the pid' : 'reading another user\'s process needs root (or CAP_SYS_PTRACE)' });
  }
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = MAPS_LINE.exec(line);
    if (!m || !m[6].startsWith('/') || m[5] === '0') continue;
    const deleted = m[6].endsWith(' (deleted)');
    out.push({
      range: m[1], perms: m[2], major: parseInt(m[3], 16), minor: parseInt(m[4], 16), inode: BigInt(m[5]),
      path: deleted ? m[6].slice(0, -' (deleted)'.length) : m[6], deleted,
    });
  }
  return out;
}

/**
 * A file opened for rbtrace: checked (regular, the expected inode) and held
 * open. `path` (/proc/self/fd/N) is what ElfFile and libbpf
 * open; `name` is what users see (the path as the process names it).
 */
export class BinaryFile {
  /** For reading (opened on first read): O_PATH descriptors cannot be read. */
  private rfd = -1;

  private constructor(readonly name: string, private fd: number, readonly dev: bigint, readonly ino: bigint, readonly size: number) {}

  get path(): string {
    return `/proc/self/fd/${this.fd}`;
  }

  toString(): string {
    return this.name;
  }

  /** Bytes [offset, offset+length) (fewer at the end of the file), read through the checked inode. */
  readAt(offset: number, length: number): Buffer {
    if (this.rfd < 0) this.rfd = openSync(this.path, constants.O_RDONLY | O_NONBLOCK | O_NOCTTY);
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.rfd, buf, got, length - got, offset + got);
      if (n === 0) break; // truncated since: what is there
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  close(): void {
    if (this.rfd >= 0) closeSync(this.rfd);
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = this.rfd = -1;
  }

  /**
   * Open `source` with O_PATH (following symlinks: no open() of a device
   * driver, no FIFO wait), then check it. `name` is shown in errors;
   * `expect` is the device and inode it must be.
   */
  static open(source: string, name: string, expect?: { major: number; minor: number; inode: bigint }): BinaryFile {
    let fd: number;
    try {
      fd = openSync(source, O_PATH);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = typeof e.errno === 'number' ? errnoText(e.errno) : e.message;
      throw new RbtraceError(`cannot open ${name}: ${why}`, { hint: e.code === 'ENOENT' ? 'check the path' : 'check the path and permissions' });
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      const kind = fileKind(st);
      if (kind !== 'regular file') {
        throw new RbtraceError(`${name} is ${kind}, not a regular file`, { hint: 'give a compiled program or shared library' });
      }
      if (expect && (devMajor(st.dev) !== expect.major || devMinor(st.dev) !== expect.minor || st.ino !== expect.inode)) {
        throw new RbtraceError(`${name} is not the file the process maps (replaced since it was mapped)`,
          { hint: 'run rbtrace as root: it then opens the mapping itself through /proc/PID/map_files' });
      }
      return new BinaryFile(name, fd, st.dev, st.ino, Number(st.size));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
}

function fileKind(st: BigIntStats): string {
  if (st.isFile()) return 'regular file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

/** Linux's dev_t encoding (new_encode_dev). */
function devMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}
function devMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}

// A process maps the same library many times (per segment), and tools look
// at several candidates: open each file once per run.
const cache = new Map<string, BinaryFile>();

function cached(key: string, open: () => BinaryFile): BinaryFile {
  let f = cache.get(key);
  if (!f) cache.set(key, (f = open()));
  return f;
}

/**
 * The file of a mapping of process `pid`, opened as the mapped object: its
 * map_files entry, else its path under the process's root, either way
 * checked against the device and inode of the mapping. Once per run and
 * file (cached, never closed: for the tools' one-shot lookups).
 */
export function openMapping(pid: number, m: Mapping): BinaryFile {
  return cached(`${pid}:${m.major}:${m.minor}:${m.inode}`, () => openMappedFile(pid, m));
}

/**
 * openMapping without the cache: a new descriptor the caller closes. For a
 * daemon (the exporter) that meets processes for as long as it runs.
 */
export function openMappedFile(pid: number, m: Mapping): BinaryFile {
  const name = m.path + (m.deleted ? ' (deleted)' : '');
  try {
    return BinaryFile.open(`/proc/${pid}/map_files/${m.range}`, name, m);
  } catch (err) {
    // EPERM without CAP_SYS_ADMIN; ENOENT if unmapped since. A non-regular
    // file or a wrong inode through map_files is the answer, not a reason to retry.
    if (!(err instanceof RbtraceError && err.message.startsWith('cannot open '))) throw err;
  }
  if (m.deleted) {
    throw new RbtraceError(`${name}, mapped by process ${pid}, is deleted, and /proc/${pid}/map_files cannot be opened without CAP_SYS_ADMIN`,
      { hint: 'run rbtrace as root' });
  }
  // /proc/PID/maps paths are relative to the reader's root: the path under
  // the process's root is right for a process in another mount namespace,
  // the plain path for a chrooted one. Either must be the mapped inode.
  try {
    return BinaryFile.open(`/proc/${pid}/root${m.path}`, name, m);
  } catch (err) {
    try {
      return BinaryFile.open(m.path, name, m);
    } catch {
      throw err;
    }
  }
}

/** A file's identity as /proc/PID/maps shows it ("major:minor:inode"): what uprobes attach to. */
export function mappingKey(m: Pick<Mapping, 'major' | 'minor' | 'inode'>): string {
  return `${m.major}:${m.minor}:${m.inode}`;
}

/** The same identity for an opened file. */
export function fileKey(f: BinaryFile): string {
  return mappingKey({ major: devMajor(f.dev), minor: devMinor(f.dev), inode: f.ino });
}

/** The path of process `pid`'s executable (/proc/PID/exe's link), undefined when unreadable (gone, a kernel thread). */
export function exePath(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/** The executable of process `pid` (/proc/PID/exe: the very file, in any mount namespace). */
export function openExecutable(pid: number): BinaryFile | undefined {
  let name: string;
  try {
    name = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined; // a kernel thread, a zombie, or not ours to see
  }
  try {
    return cached(`${pid}:exe`, () => BinaryFile.open(`/proc/${pid}/exe`, name.replace(/ \(deleted\)$/, '')));
  } catch {
    return undefined;
  }
}

/** A file named by the user (--lib PATH) or found on this system: same checks, no expected inode. */
export function openFile(path: string, name = path): BinaryFile {
  return cached(`path:${path}`, () => BinaryFile.open(path, name));
}
