// gcstat's probe: the USDT probes of libruby it attaches (src/bpf/gcstat.bpf.c),
// the check that a ruby has them, and how they attach: to one process (-p),
// to every process mapping the file (BPF cookies, 5.15+), or per process
// where the kernel has no cookies. The command (index.ts) and the exporter
// (metrics.ts) both attach through here.
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { requireRubyProbes } from '../../core/linux/ruby.js';
import { RbtraceError } from '../../core/errors.js';
import type { BpfLink, BpfObject } from '../../core/bpf/object.js';
import type { SKELETON, ProgramName, Rodata } from '../../generated/gcstat.js';
import type { RubyGcLayout } from './layout.js';

export const PROVIDER = 'ruby';
export const PROBES: { program: ProgramName; name: string }[] = [
  { program: 'gc_mark_begin', name: 'gc__mark__begin' },
  { program: 'gc_mark_end', name: 'gc__mark__end' },
  { program: 'gc_sweep_begin', name: 'gc__sweep__begin' },
  { program: 'gc_sweep_end', name: 'gc__sweep__end' },
];

export const PROGRAMS: ProgramName[] = PROBES.map((p) => p.program);

export const PATH_NOTE = 'USDT probes ruby:gc__{mark,sweep}__{begin,end} (uprobes with semaphores)';

/** The USDT GC probes must be in the binary's .note.stapsdt: else a one-line error saying how to get them. */
export function checkGcProbes(binary: string | BinaryFile): void {
  requireRubyProbes(binary, PROBES.map((p) => p.name));
}

/** Why the binary lacks the GC probes (checkGcProbes's message), or undefined when it has them. */
export function missingGcProbes(binary: BinaryFile): string | undefined {
  try {
    checkGcProbes(binary);
    return undefined;
  } catch (err) {
    if (err instanceof RbtraceError) return err.message;
    throw err;
  }
}

/**
 * Attach every GC probe of `binary`: to one process, or (pid undefined) to
 * every process mapping it. `layout`: its index in `layouts` (setLayout),
 * carried as the probes' USDT cookie; 0 (none) leaves the VM unread.
 */
export function attachGcProbes(obj: BpfObject<typeof SKELETON>, binary: BinaryFile, pid?: number, layout = 0): BpfLink[] {
  return PROBES.map((p) => obj.program(p.program).attachUsdt({ binary, provider: PROVIDER, name: p.name, pid, cookie: BigInt(layout) }));
}

/** .rodata for the collection model: the steps ring buffer on. */
export function stepsRodata(): Partial<Rodata> {
  return { want_steps: true };
}

/**
 * Layouts written to `layouts`, one index per file (by key): the cookie to
 * attach that file's probes with. 0 when its layout is unknown, or the
 * table is full (GCSTAT_LAYOUTS files: collections then counted, not explained).
 */
export class GcLayouts {
  private readonly ids = new Map<string, number>();

  constructor(private readonly obj: BpfObject<typeof SKELETON>) {}

  cookie(key: string, layout: RubyGcLayout | undefined): number {
    if (!layout) return 0;
    let id = this.ids.get(key);
    if (id !== undefined) return id;
    id = this.ids.size + 1;
    if (id >= this.obj.map('layouts').maxEntries) return 0;
    this.obj.typedMap('layouts').update({ value: id }, {
      vm_ptr_vaddr: layout.vmPtr, mark_end_vaddr: layout.markEnd, sweep_end_vaddr: layout.sweepEnd,
      off_vm_objspace: layout.vmObjspace, off_gc_count: layout.count, off_gc_info: layout.info,
    });
    this.ids.set(key, id);
    return id;
  }
}
