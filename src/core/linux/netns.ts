// Network namespaces: which ones exist (every namespace some process is in,
// plus those `ip netns add` named under /run/netns), and running a piece of
// code with the calling thread inside one.
//
// Why a thread and not a process: a BPF TCP iterator walks the network
// namespace of the task that creates it (bpf_iter_create takes current's
// netns for the seq_file), and setns(CLONE_NEWNET) moves only the calling
// thread. Node's main thread runs JavaScript one call at a time, so between
// setns(target) and setns(back) inside inNetns() nothing else runs on it:
// libuv's pool threads and V8's helper threads are other threads and keep
// their own namespace. Whatever the callback creates keeps the namespace it
// was created in (an iterator fd, /proc/thread-self/net/* contents read
// there), which is the point.
import { closeSync, fstatSync, openSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { setns, CLONE_NEWNET } from '../ffi/libc.js';
import { RbtraceError, UsageError, errnoText } from '../errors.js';

export interface Netns {
  /** The namespace's inode (what `lsns -t net` and `ip netns identify` show, and /proc/PID/ns/net links to). */
  inode: number;
  /** A path that opens it: /proc/PID/ns/net of its lowest pid, or /run/netns/NAME. */
  path: string;
  /** Its lowest pid, when a process is in it. */
  pid?: number;
  /** Its name under /run/netns (ip netns), when it has one. */
  name?: string;
}

const RUN_NETNS = '/run/netns';

/** Inode of the network namespace behind a /proc/PID/ns/net link or an nsfs file. */
export function netnsInode(path: string): number | undefined {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(path));
    if (m) return Number(m[1]);
  } catch {
    // not a link (a bind-mounted nsfs file under /run/netns): stat it
  }
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** The namespace rbtrace itself runs in. */
export function ownNetnsInode(): number | undefined {
  return netnsInode('/proc/thread-self/ns/net');
}

/**
 * Every network namespace that has a process in it or a name under
 * /run/netns, by inode. Costs one readlink per process.
 */
export function listNetns(): Map<number, Netns> {
  const out = new Map<number, Netns>();
  let pids: number[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
  } catch {
    // no /proc: nothing to list
  }
  for (const pid of pids) {
    const ino = netnsInode(`/proc/${pid}/ns/net`);
    if (ino !== undefined && !out.has(ino)) out.set(ino, { inode: ino, path: `/proc/${pid}/ns/net`, pid });
  }
  let names: string[] = [];
  try {
    names = readdirSync(RUN_NETNS).sort();
  } catch {
    // no named namespaces
  }
  for (const name of names) {
    const path = `${RUN_NETNS}/${name}`;
    const ino = netnsInode(path);
    if (ino === undefined) continue;
    const known = out.get(ino);
    if (known) known.name ??= name;
    else out.set(ino, { inode: ino, path, name });
  }
  return out;
}

let selfFd: number | undefined;

/**
 * Run `fn` with the calling thread in the network namespace opened from
 * `path`, then move back. Returns fn's result and the inode of the namespace
 * it ran in (from the opened file, so a pid reused in between cannot send us
 * elsewhere unnoticed). Throws RbtraceError when the namespace cannot be
 * entered; if moving back fails the process cannot go on (its thread would
 * stay in the wrong namespace), so that is thrown as fatal too.
 */
export function inNetns<T>(path: string, fn: () => T): { inode: number; value: T } {
  selfFd ??= openSync('/proc/thread-self/ns/net', 'r');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new RbtraceError(`cannot open network namespace ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const inode = fstatSync(fd).ino;
    if (inode === fstatSync(selfFd).ino) return { inode, value: fn() };
    const rc = setns(fd, CLONE_NEWNET);
    if (rc < 0) throw new RbtraceError(`cannot enter network namespace ${path}: ${errnoText(rc)}`, { hint: 'is it a network namespace? rbtrace needs CAP_SYS_ADMIN' });
    try {
      return { inode, value: fn() };
    } finally {
      const back = setns(selfFd, CLONE_NEWNET);
      if (back < 0) {
        // Nothing sane is left to do on this thread.
        process.stderr.write(`rbtrace: cannot return to its own network namespace: ${errnoText(back)}\n`);
        process.exit(1);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A --netns operand: a path (/run/netns/NAME, /proc/PID/ns/net, any nsfs
 * file), a name under /run/netns, or an inode number of a namespace that has
 * a process in it now. Checked by entering it once.
 */
export function resolveNetnsArg(text: string, flag = '--netns'): Netns {
  let netns: Netns | undefined;
  if (/^\d+$/.test(text)) {
    netns = listNetns().get(Number(text));
    if (!netns) throw new UsageError(`${flag} ${text}: no process is in a network namespace with that inode`, 'list them with lsns -t net');
  } else {
    const path = text.includes('/') ? text : `${RUN_NETNS}/${text}`;
    try {
      statSync(path);
    } catch {
      throw new UsageError(`${flag} ${text}: no such file`, 'give /run/netns/NAME, /proc/PID/ns/net, a name from ip netns list, or an inode from lsns -t net');
    }
    netns = { inode: 0, path, ...(text.includes('/') ? {} : { name: text }) };
  }
  try {
    netns.inode = inNetns(netns.path, () => undefined).inode;
  } catch (err) {
    throw new UsageError(`${flag} ${text}: not a network namespace (${(err as Error).message.replace(/^.*?: (?=E[A-Z]+:)/, '')})`, 'give /run/netns/NAME, /proc/PID/ns/net or an inode from lsns -t net');
  }
  return netns;
}
