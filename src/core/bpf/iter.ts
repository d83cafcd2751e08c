// BPF iterators (iter/tcp, iter/task, ...): attach, then each read of a
// fresh iterator fd runs the program over the kernel objects once. What the
// program writes with bpf_seq_write/BPF_SEQ_PRINTF comes back as bytes.
import { closeSync, readSync } from 'node:fs';
import { libbpf } from '../ffi/libbpf.js';
import { RbtraceError, errnoText } from '../errors.js';
import { inNetns } from '../linux/netns.js';
import type { BpfLink } from './object.js';

/** Run an attached iterator once and return everything it wrote. */
export function readIterator(link: BpfLink): Buffer {
  return readIteratorFd(createIterator(link));
}

/**
 * Run a network iterator (iter/tcp, iter/udp, ...) over another network
 * namespace: the iterator walks the namespace its creator is in, so it is
 * created with this thread inside `netnsPath` (src/core/linux/netns.ts) and read
 * back here. Returns the namespace's inode with the bytes.
 */
export function readIteratorIn(link: BpfLink, netnsPath: string): { inode: number; data: Buffer } {
  const { inode, value: fd } = inNetns(netnsPath, () => createIterator(link));
  return { inode, data: readIteratorFd(fd) };
}

/** A fresh iterator fd (the program runs as it is read; see readIteratorFd). */
export function createIterator(link: BpfLink): number {
  const fd = libbpf.iterCreate(link.fd);
  if (fd < 0) throw new RbtraceError(`cannot create iterator (${link.description}): ${errnoText(fd)}`);
  return fd;
}

/**
 * A buffer kept between reads of a large iterator (10,000 listeners are
 * 640 KB a time): read into it, no chunks to concatenate, nothing new to
 * allocate each interval.
 */
export class IterBuffer {
  buf = Buffer.alloc(64 * 1024);
}

/**
 * Read an iterator fd to its end, and close it. With `scratch`, the result is
 * a view into scratch's buffer, valid until its next use.
 */
export function readIteratorFd(fd: number, scratch?: IterBuffer): Buffer {
  const s = scratch ?? new IterBuffer();
  let len = 0;
  try {
    for (;;) {
      if (s.buf.length - len < 64 * 1024) {
        const bigger = Buffer.alloc(s.buf.length * 2);
        s.buf.copy(bigger, 0, 0, len);
        s.buf = bigger;
      }
      const n = readSync(fd, s.buf, len, s.buf.length - len, null);
      if (n <= 0) break;
      len += n;
    }
  } finally {
    closeSync(fd);
  }
  return scratch ? s.buf.subarray(0, len) : Buffer.from(s.buf.subarray(0, len));
}

/** Split an iterator's output into fixed-size records (bpf_seq_write of a struct). */
export function* records(data: Buffer, size: number): Generator<DataView> {
  for (let off = 0; off + size <= data.length; off += size) {
    yield new DataView(data.buffer, data.byteOffset + off, size);
  }
}
