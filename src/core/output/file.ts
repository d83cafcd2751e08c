// Files rbtrace writes because the user named them (--save FILE, profile's
// --svg FILE). rbtrace runs as root, so a slip of the hand (`--save
// /bin/true`, a tab-completed binary) or a planted name in a shared
// directory (/tmp/run.json made a symbolic link to /etc/shadow by another
// user) must not replace a file that is not ours. A fuzzed `--save
// /bin/true` once did exactly that on a CI machine.
//
// The rules, checked when the option is parsed (before any tracing) and
// again just before the write:
// - the directory exists and is writable;
// - the name, if it exists, is a regular file (not a link, a directory, a
//   device or a FIFO) that is empty or already holds what this option writes
//   (a saved run, an SVG): anything else is refused, not overwritten;
// - the text goes to a new temporary file (O_EXCL: never one planted there,
//   never through a link), then is renamed over the name: a reader never
//   sees half a file, and a link at the name is replaced, not followed;
// - the directory is opened one component at a time without following a
//   symbolic link unless root or rbtrace's own user owns it and the
//   directory holding it belongs to root (a link another user planted,
//   /tmp/d -> /etc, is refused), and every name is then used relative to
//   that open directory: /proc/self/fd/N/NAME resolves N itself, never a
//   path again (Node has no openat/renameat).
import { accessSync, closeSync, constants, createWriteStream, fstatSync, lstatSync, openSync, readSync, readlinkSync, renameSync, rmSync, writeFileSync, type Stats, type WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { RbtraceError, UsageError } from '../errors.js';

export interface OutputKind {
  /** The option, for messages: '--save'. */
  flag: string;
  /** What the option writes, for messages: 'an rbtrace saved run'. */
  what: string;
  /** Does a file starting with this text (up to 4 KiB) hold what the option writes? */
  recognise(head: string): boolean;
}

const HEAD_BYTES = 4096;

function headOf(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    return buf.toString('utf8', 0, readSync(fd, buf, 0, HEAD_BYTES, 0));
  } finally {
    closeSync(fd);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A name in the directory open as `fd`: what openat(fd, name) would open. */
export const inDir = (fd: number, name: string) => `/proc/self/fd/${fd}/${name}`;

const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const euid = () => process.geteuid?.() ?? 0;

/**
 * Open directory `dir` as rbtrace may write in it: each component opened
 * with O_NOFOLLOW relative to the one before. A symbolic link on the way is
 * followed only when root or this user owns it and root owns the directory
 * holding it (/var/run -> /run); any other is refused with the reason.
 * Returns the fd (the caller closes it).
 */
export function openDirectory(dir: string): number {
  const todo = resolve(dir).split('/').filter(Boolean);
  let fd = openSync('/', O_DIR);
  let links = 0;
  let at = '/';
  try {
    while (todo.length) {
      const part = todo.shift()!;
      if (part === '.') continue;
      let next: number;
      try {
        next = openSync(inDir(fd, part), O_DIR);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ELOOP' && code !== 'ENOTDIR') throw err;
        const st = lstatSync(inDir(fd, part));
        if (!st.isSymbolicLink()) throw err;
        const owner = fstatSync(fd).uid;
        if ((st.uid !== 0 && st.uid !== euid()) || owner !== 0) {
          throw Object.assign(new Error(`${resolve(at, part)} is a symbolic link of user ${st.uid}${owner !== 0 ? ` in a directory of user ${owner}` : ''}`), { code: 'EPLANTED' });
        }
        if (++links > 40) throw Object.assign(new Error(`too many symbolic links in ${dir}`), { code: 'ELOOP' });
        const target = readlinkSync(inDir(fd, part));
        todo.unshift(...target.split('/').filter(Boolean));
        if (target.startsWith('/')) {
          closeSync(fd);
          fd = openSync('/', O_DIR);
          at = '/';
        }
        continue;
      }
      closeSync(fd);
      fd = next;
      at = resolve(at, part);
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Why rbtrace will not write in `dir`, or undefined: also checks it is writable. */
export function directoryRefusal(given: string, opts: { othersDir?: boolean } = {}): string | undefined {
  const dir = resolve(given);
  let fd: number;
  try {
    fd = openDirectory(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'EPLANTED' ? `will not follow ${e.message}` : `cannot open ${dir} (${e.code ?? e.message})`;
  }
  try {
    const owner = fstatSync(fd).uid;
    if (!opts.othersDir && owner !== 0 && owner !== euid()) return `${dir} belongs to user ${owner}, who could swap its files during the write`;
    accessSync(inDir(fd, '.'), constants.W_OK);
    return undefined;
  } catch {
    return `${dir} is not writable`;
  } finally {
    closeSync(fd);
  }
}

/**
 * Write `data` as `name` in the open directory `dirFd`: a new temporary
 * file (O_EXCL, never a link or a planted file), renamed over the name (a
 * link there is replaced, not followed). Throws the errno error.
 */
export function writeInDirectory(dirFd: number, name: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `.${randomBytes(6).toString('hex')}.rbtrace-tmp`;
  let created = false;
  try {
    const fd = openSync(inDir(dirFd, tmp), 'wx', mode);
    created = true;
    try {
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(inDir(dirFd, tmp), inDir(dirFd, name));
  } catch (err) {
    if (created) rmSync(inDir(dirFd, tmp), { force: true });
    throw err;
  }
}

/** Why an existing file at `path` must not be replaced, or undefined when it may be. */
function refusal(path: string, kind: OutputKind): string | undefined {
  let st: Stats | undefined;
  try {
    st = lstatOrUndefined(path);
  } catch (err) {
    return `cannot look at it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  if (!st) return undefined;
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (st.isDirectory()) return 'it is a directory';
  if (!st.isFile()) return 'it is not a regular file';
  if (st.size === 0) return undefined;
  let head: string;
  try {
    head = headOf(path);
  } catch (err) {
    return `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  return kind.recognise(head) ? undefined : `it exists and is not ${kind.what}`;
}

/** Parse-time check of an output FILE (a commander argParser's body): the name, or a one-line UsageError. */
export function checkOutputPath(text: string, kind: OutputKind): string {
  if (text === '') throw new UsageError(`${kind.flag} wants a file name`, `e.g. ${kind.flag} out${kind.flag === '--svg' ? '.svg' : '.json'}`);
  const dir = dirname(resolve(text));
  const denied = directoryRefusal(dir, { othersDir: true });
  if (denied) throw new UsageError(`${kind.flag}: cannot write in ${dir}: ${denied}`, 'give a file in an existing, writable directory, by a path without links of other users');
  const why = refusal(text, kind);
  if (why) throw new UsageError(`${kind.flag}: will not replace ${text}: ${why}`, 'remove it first, or give another name');
  return text;
}

/** -o FILE: a tool's report, text or NDJSON (anything without a NUL byte may be replaced, as strace -o does). */
export const REPORT_FILE: OutputKind = {
  flag: '-o',
  what: 'a text report',
  recognise: (head) => !head.includes('\0'),
};

/**
 * -o FILE as a stream, written while the tool runs (-i reports arrive as
 * they are made): checked again by the rules above, then opened with
 * O_NOFOLLOW (a link planted at the name since the check is refused, not
 * followed) and truncated.
 */
export function openOutputStream(path: string, kind: OutputKind = REPORT_FILE): WriteStream {
  const why = refusal(path, kind);
  if (why) throw new RbtraceError(`${kind.flag}: will not replace ${path}: ${why}`, { hint: 'remove it first, or give another name' });
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    throw new RbtraceError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { hint: `check ${kind.flag}'s directory and its permissions` });
  }
  return createWriteStream('', { fd });
}

/** Write `data` to `path` by the rules above; a one-line RbtraceError when it cannot. */
export function writeOutputFile(path: string, data: string | Uint8Array, kind: OutputKind): void {
  // Checked again: the name may have changed during the run.
  const why = refusal(path, kind);
  if (why) throw new RbtraceError(`${kind.flag}: will not replace ${path}: ${why}`, { hint: 'remove it first, or give another name' });
  let dirFd: number | undefined;
  try {
    dirFd = openDirectory(dirname(resolve(path)));
    // The name as this directory holds it now: checked again through the open directory.
    const why2 = refusal(inDir(dirFd, basename(resolve(path))), kind);
    if (why2) throw new RbtraceError(`${kind.flag}: will not replace ${path}: ${why2}`, { hint: 'remove it first, or give another name' });
    writeInDirectory(dirFd, basename(resolve(path)), data);
  } catch (err) {
    if (err instanceof RbtraceError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new RbtraceError(`cannot write ${path}: ${e.code === 'EPLANTED' ? `will not follow ${e.message}` : e.code ?? e.message}`,
      { hint: `check ${kind.flag}'s directory and its permissions` });
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
}
