// libc calls Node does not offer: setns(2), to move the calling thread (and
// only it) into another network namespace, so that a BPF iterator created
// there walks that namespace (src/core/linux/netns.ts); and malloc_trim(3), to give
// back to the system what libbpf and libuv freed (src/core/linux/memory.ts); and
// execv(2), for the exporter to restart itself with bounded V8 heap flags.
import koffi from 'koffi';

let libc: koffi.IKoffiLib | undefined;
let setnsFn: koffi.KoffiFunction | undefined;
let trimFn: koffi.KoffiFunction | undefined;

export const CLONE_NEWNET = 0x40000000;

/** setns(fd, nstype): 0, or -errno. */
export function setns(fd: number, nstype: number): number {
  libc ??= koffi.load('libc.so.6');
  setnsFn ??= libc.func('int setns(int fd, int nstype)');
  const rc = setnsFn(fd, nstype) as number;
  return rc < 0 ? -koffi.errno() : rc;
}

/** malloc_trim(0): 1 when memory was released. */
export function mallocTrim(): number {
  libc ??= koffi.load('libc.so.6');
  trimFn ??= libc.func('int malloc_trim(size_t pad)');
  return trimFn(0) as number;
}

let execvFn: koffi.KoffiFunction | undefined;
let fcntlFn: koffi.KoffiFunction | undefined;
const F_SETFD = 2;

/**
 * execv(2) keeping stdin, stdout and stderr: this process becomes `argv`
 * (same pid, same parent, same capabilities: what systemd and Kubernetes
 * watch). Node marks fds 0-2 close-on-exec when it starts, so that is undone
 * first. Returns -errno; it returns only if the exec failed.
 */
export function execKeepingStdio(path: string, argv: string[]): number {
  libc ??= koffi.load('libc.so.6');
  execvFn ??= libc.func('int execv(const char *path, const char **argv)');
  fcntlFn ??= libc.func('int fcntl(int fd, int cmd, ...)');
  for (const fd of [0, 1, 2]) fcntlFn(fd, F_SETFD, 'int', 0);
  execvFn(path, [...argv, null]);
  return -koffi.errno();
}
