// libc calls Node does not offer: setns(2), to move the calling thread (and
// only it) into another network namespace, so that a BPF iterator created
// there walks that namespace (src/core/netns.ts); and malloc_trim(3), to give
// back to the system what libbpf and libuv freed (src/core/memory.ts).
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
