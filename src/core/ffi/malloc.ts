// glibc's malloc_trim: give freed heap back to the kernel. libbpf parses the
// kernel's BTF (megabytes) while loading each object and frees it after, but
// glibc keeps the freed pages; a long-running process (the exporter) calls
// this once its objects are loaded so its RSS is what it really uses.
import koffi from 'koffi';

let trim: koffi.KoffiFunction | undefined;

/** Returns false where there is no glibc malloc_trim (musl): nothing to do there. */
export function releaseFreedHeap(): boolean {
  try {
    trim ??= koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    trim(0);
    return true;
  } catch {
    return false;
  }
}
