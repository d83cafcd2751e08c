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
//   sees half a file, and a link at the name is replaced, not followed.
import { accessSync, closeSync, constants, createWriteStream, lstatSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync, type Stats, type WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
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
  try {
    if (!statSync(dir).isDirectory()) throw new Error();
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${kind.flag}: cannot write in ${dir}`, 'give a file in an existing, writable directory');
  }
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
  const tmp = resolve(dirname(resolve(path)), `.${randomBytes(6).toString('hex')}.rbtrace-tmp`);
  let created = false;
  try {
    // 'wx': O_CREAT|O_EXCL, which also refuses to follow a link at tmp.
    const fd = openSync(tmp, 'wx', 0o644);
    created = true;
    try {
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    if (created) rmSync(tmp, { force: true });
    throw new RbtraceError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { hint: `check ${kind.flag}'s directory and its permissions` });
  }
}
