// Where a Ruby keeps its GC's own record of a collection, for gcstat.bpf.c to
// read from the process's memory: ruby_current_vm_ptr, the offset of
// rb_vm_t.objspace and of rb_objspace_t.profile.count (src/core/elf/ruby-vm.ts:
// from the symbol where exported, and rb_gc_count's machine code), and of
// profile.latest_gc_info, a fixed distance before count in the versions
// whose struct is known (gc.c: run, latest_gc_info, records, current_record,
// next_index, size, invoke_time, minor/major/compact counts,
// read_barrier_faults, sweep start, two sizes, then count).
import { ElfFile, stripVersion } from '../../core/elf/elf.js';
import { findRubyVm } from '../../core/elf/ruby-vm.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { PROVIDER } from './probe.js';

/** Distance from profile.latest_gc_info to profile.count, per Ruby version (x86_64 and arm64 alike: LP64). */
const INFO_BEFORE_COUNT: Record<string, number> = { '3.1': 100, '3.2': 100, '3.3': 100 };

export interface RubyGcLayout {
  version: string;
  vmPtr: number;
  markEnd: number;
  sweepEnd: number;
  vmObjspace: number;
  count: number;
  info: number;
}

/** The layout, or why there is none (said with -v and in --log's header). */
export type LayoutResult = { layout: RubyGcLayout } | { why: string };

export function rubyGcLayout(binary: BinaryFile): LayoutResult {
  try {
    const elf = ElfFile.open(binary);
    const sym = (name: string) => elf.symbols().find((s) => s.shndx !== 0 && stripVersion(s.name) === name);
    const at = (vaddr: number, len: number) => {
      const off = elf.fileOffset(vaddr);
      return off === undefined ? undefined : binary.readAt(off, len);
    };
    const verSym = sym('ruby_version');
    const version = verSym ? at(verSym.value, 16)?.toString('latin1').split('\0')[0] ?? '' : '';
    const minor = version.split('.').slice(0, 2).join('.');
    const before = INFO_BEFORE_COUNT[minor];
    if (before === undefined) return { why: `Ruby ${version || '(version unknown)'}'s rb_objspace layout is not known to rbtrace (known: ${Object.keys(INFO_BEFORE_COUNT).join(', ')})` };
    const offs = findRubyVm(elf, (off, len) => binary.readAt(off, len));
    if (!offs) return { why: `cannot find the objspace in ${binary.name} (no ruby_current_vm_ptr, or rb_gc_count's code is not the x86_64 form rbtrace decodes)` };
    const notes = elf.sdtNotes().filter((n) => n.provider === PROVIDER);
    // A probe with several locations has no single link-time address to find the library's base from.
    const single = (name: string) => {
      const at2 = notes.filter((n) => n.name === name);
      return at2.length === 1 ? at2[0].pc : 0;
    };
    return { layout: { version, vmPtr: offs.vmPtr, markEnd: single('gc__mark__end'), sweepEnd: single('gc__sweep__end'), vmObjspace: offs.vmObjspace, count: offs.count, info: offs.count - before } };
  } catch (err) {
    return { why: `cannot read ${binary.name}: ${(err as Error).message}` };
  }
}

/** GPR_FLAG_* of gc.c (3.1 to 3.3): what GC.latest_gc_info decodes. */
const MAJOR_BY: [number, string][] = [[0x001, 'nofree'], [0x002, 'oldgen'], [0x004, 'shady'], [0x008, 'force'], [0x020, 'oldmalloc']];
const GC_BY: [number, string][] = [[0x100, 'newobj'], [0x200, 'malloc'], [0x400, 'method'], [0x800, 'capi'], [0x1000, 'stress']];
const IMMEDIATE_SWEEP = 0x2000;

export interface GcReason {
  major: boolean;
  /** GC.latest_gc_info[:major_by]: null for a minor GC. */
  major_by: string | null;
  /** GC.latest_gc_info[:gc_by]. */
  gc_by: string | null;
  immediate_sweep: boolean;
}

/** latest_gc_info's flags as GC.latest_gc_info shows them (gc.c gc_info_decode). */
export function decodeGcInfo(flags: number): GcReason {
  const majorBy = MAJOR_BY.find(([bit]) => flags & bit)?.[1] ?? null;
  return {
    major: (flags & 0xff) !== 0,
    major_by: majorBy,
    gc_by: GC_BY.find(([bit]) => flags & bit)?.[1] ?? null,
    immediate_sweep: (flags & IMMEDIATE_SWEEP) !== 0,
  };
}
