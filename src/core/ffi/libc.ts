// libc calls Node does not offer: setns(2), to move the calling thread (and
// only it) into another network namespace, so that a BPF iterator created
// there walks that namespace (src/core/linux/netns.ts); and malloc_trim(3), to give
// back to the system what libbpf and libuv freed (src/core/linux/memory.ts); and
// execv(2), for the exporter to restart itself with bounded V8 heap flags;
// eventfd(2) and poll(2) on a worker thread, to wait for ring buffers
// without a timer (src/core/bpf/ring-poller.ts).
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

let pollFn: koffi.KoffiFunction | undefined;
let eventfdFn: koffi.KoffiFunction | undefined;
let readFn: koffi.KoffiFunction | undefined;
let writeFn: koffi.KoffiFunction | undefined;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK): the fd, or -errno. */
export function eventFd(): number {
  libc ??= koffi.load('libc.so.6');
  eventfdFn ??= libc.func('int eventfd(unsigned int initval, int flags)');
  const fd = eventfdFn(0, EFD_CLOEXEC | EFD_NONBLOCK) as number;
  return fd < 0 ? -koffi.errno() : fd;
}

/** Add one to an eventfd's counter (wakes whoever polls it). */
export function eventFdSignal(fd: number): void {
  libc ??= koffi.load('libc.so.6');
  writeFn ??= libc.func('long write(int fd, const void *buf, unsigned long count)');
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  writeFn(fd, one, 8);
}

/** Reset an eventfd's counter to 0 and return what it was (non-blocking: 0 when nothing was there). */
export function eventFdDrain(fd: number): number {
  libc ??= koffi.load('libc.so.6');
  readFn ??= libc.func('long read(int fd, _Out_ void *buf, unsigned long count)');
  const value = Buffer.alloc(8);
  return (readFn(fd, value, 8) as number) === 8 ? Number(value.readBigUInt64LE()) : 0;
}

/**
 * poll(2) on a libuv worker thread: `fds` is an array of struct pollfd
 * (8 bytes each: int fd, short events, short revents), written back in place;
 * `done` gets poll's result on the main thread (-1 if it failed: errno is
 * the worker's, not to be read here).
 */
export function pollAsync(fds: Buffer, timeoutMs: number, done: (result: number) => void): void {
  libc ??= koffi.load('libc.so.6');
  pollFn ??= libc.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)');
  pollFn.async(fds, fds.length / 8, timeoutMs, (err: unknown, result: number) => {
    done(err || result < 0 ? -1 : result);
  });
}
