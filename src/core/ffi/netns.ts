// setns(2) from libc, for what Node cannot do: move the calling thread (and
// only it) into another network namespace, so that a BPF iterator created
// there walks that namespace (see src/core/netns.ts).
import koffi from 'koffi';

let setnsFn: koffi.KoffiFunction | undefined;

export const CLONE_NEWNET = 0x40000000;

/** setns(fd, nstype): 0, or -errno. */
export function setns(fd: number, nstype: number): number {
  setnsFn ??= koffi.load('libc.so.6').func('int setns(int fd, int nstype)');
  const rc = setnsFn(fd, nstype) as number;
  return rc < 0 ? -koffi.errno() : rc;
}
