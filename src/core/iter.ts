// BPF iterators (iter/tcp, iter/task, ...): attach, then each read of a
// fresh iterator fd runs the program over the kernel objects once. What the
// program writes with bpf_seq_write/BPF_SEQ_PRINTF comes back as bytes.
import { closeSync, readSync } from 'node:fs';
import { libbpf } from './ffi/libbpf.js';
import { RbtraceError, errnoText } from './errors.js';
import type { BpfLink } from './object.js';

/** Run an attached iterator once and return everything it wrote. */
export function readIterator(link: BpfLink): Buffer {
  const fd = libbpf.iterCreate(link.fd);
  if (fd < 0) throw new RbtraceError(`cannot create iterator (${link.description}): ${errnoText(fd)}`);
  const chunks: Buffer[] = [];
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    closeSync(fd);
  }
  return Buffer.concat(chunks);
}

/** Split an iterator's output into fixed-size records (bpf_seq_write of a struct). */
export function* records(data: Buffer, size: number): Generator<DataView> {
  for (let off = 0; off + size <= data.length; off += size) {
    yield new DataView(data.buffer, data.byteOffset + off, size);
  }
}
