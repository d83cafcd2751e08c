// Keeping a long-running tool's RSS down. glibc keeps memory that C code
// freed (libbpf's parse of the kernel's BTF at load, libuv's buffers for
// large readdir/readlink runs) for reuse instead of returning it, so a tool
// that did such work once carries it as RSS for its whole run. malloc_trim
// gives it back; it costs well under a millisecond when there is little to
// release, so a tool may call it after each large piece of work.
import { mallocTrim } from '../ffi/libc.js';

/** Return freed C heap memory to the system (glibc); a no-op elsewhere. */
export function releaseFreedMemory(): void {
  try {
    mallocTrim();
  } catch {
    // not glibc: nothing to do
  }
}
