// Which BTF libbpf should use for CO-RE relocations.
//
// libbpf parses the kernel's whole BTF (~5 MiB here, held in two copies while
// parsing) on every object load. The build makes build/bpf/vmlinux.min.btf:
// the running kernel's BTF cut down to the types our objects relocate against
// (`bpftool gen min_core_btf`). It is only valid on the very kernel it was
// made from, so it is used only when the fingerprint matches: same release,
// same GNU build id (/sys/kernel/notes) and same BTF size. On any other
// kernel (a package built elsewhere) libbpf reads the kernel's own BTF as usual.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { btfPath } from '../linux/system.js';

export interface BtfFingerprint {
  release: string;
  buildId: string;
  btfSize: number;
}

/** The kernel's GNU build id, from the ELF notes in /sys/kernel/notes. */
export function kernelBuildId(): string {
  let notes: Buffer;
  try {
    notes = readFileSync('/sys/kernel/notes');
  } catch {
    return '';
  }
  for (let off = 0; off + 12 <= notes.length;) {
    const namesz = notes.readUInt32LE(off);
    const descsz = notes.readUInt32LE(off + 4);
    const type = notes.readUInt32LE(off + 8);
    const nameStart = off + 12;
    const descStart = nameStart + align4(namesz);
    const name = notes.toString('latin1', nameStart, nameStart + Math.max(0, namesz - 1));
    if (name === 'GNU' && type === 3 /* NT_GNU_BUILD_ID */) return notes.toString('hex', descStart, descStart + descsz);
    off = descStart + align4(descsz);
  }
  return '';
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function kernelBtfFingerprint(path = btfPath()): BtfFingerprint {
  let btfSize = -1;
  try {
    btfSize = statSync(path).size;
  } catch {
    // no BTF: nothing will match
  }
  return { release: release(), buildId: kernelBuildId(), btfSize };
}

let cached: string | null | undefined;

/** Path of the minimized BTF when it fits the running kernel, else undefined (use the kernel's). */
export function minimizedBtf(objectDir: string): string | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  if (process.env.RBTRACE_FULL_BTF === '1') return undefined;
  const btf = join(objectDir, 'vmlinux.min.btf');
  const meta = join(objectDir, 'vmlinux.min.json');
  if (!existsSync(btf) || !existsSync(meta)) return undefined;
  try {
    const want = JSON.parse(readFileSync(meta, 'utf8')) as BtfFingerprint;
    const have = kernelBtfFingerprint();
    if (want.buildId && want.release === have.release && want.buildId === have.buildId && want.btfSize === have.btfSize) cached = btf;
  } catch {
    // unreadable: use the kernel's BTF
  }
  return cached ?? undefined;
}
