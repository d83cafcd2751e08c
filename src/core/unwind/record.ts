// A BPF record carrying a user-stack copy (src/bpf/include/rbtrace_ustack.bpf.h:
// the registers ip/sp/bp/lr and stack_len bytes of stack[] from sp up) -> the
// unwound pcs. Called inside the ring-buffer callback of each tool that sends
// such records (profile --unwind dwarf, strlat --stack --unwind dwarf): the
// record's memory is the ring buffer's, gone once the callback returns.
import type { StructLayout } from '../bpf/layout.js';
import type { Region } from '../stacks/maps.js';
import { returnAddress } from './arch.js';
import { Unwinder, type Unwound } from './unwinder.js';

/** The fields every stack-copy record has (the generated layouts name them so). */
export interface StackCopyRecord {
  ip: number | bigint;
  sp: number | bigint;
  bp: number | bigint;
  lr: number | bigint;
  stack_len: number;
  stack: unknown;
}

/** Where a process's mappings are read from: a Symbolizer (its snapshots, later used to name the pcs). */
export interface Mappings {
  region(pid: number, addr: number): Region | undefined;
}

export class RecordUnwinder {
  private readonly unwinder: Unwinder;

  /** `sym`: whose mapping snapshots the walk reads (and later symbolizes the pcs with). */
  constructor(sym: Mappings) {
    this.unwinder = new Unwinder((pid, addr) => sym.region(pid, addr));
  }

  /** Walk the stack copy of `rec` (laid out by `layout`) taken in process `pid`. */
  unwind(pid: number, L: StructLayout<StackCopyRecord>, rec: DataView): Unwound {
    const { arch } = this.unwinder;
    return this.unwinder.unwind(pid, {
      ip: Number(L.read(rec, 'ip')), sp: Number(L.read(rec, 'sp')), bp: Number(L.read(rec, 'bp')),
      lr: arch.lr === undefined ? undefined : returnAddress(arch, L.read(rec, 'lr')),
      bytes: L.bytes(rec, 'stack', L.read(rec, 'stack_len')),
    });
  }
}
