// Ruby frames from outside the process: where the VM is in a ruby process
// (libruby's exported ruby_single_main_ractor, or the main ractor through
// ruby_current_vm_ptr where that is hidden, and the struct layout of its
// version), and what a control frame's (iseq, pc) is: label, path and line,
// read from the process's memory (/proc/PID/mem) and cached per iseq.
//
// The BPF side (src/bpf/rbstack.bpf.c) walks the control frames of the
// thread holding the GVL when it is the thread sampled; the layouts it needs
// come from here (rbstack_ruby).
import { closeSync, openSync, readSync } from 'node:fs';
import { ElfFile } from '../elf/elf.js';
import { findRubyVm } from '../elf/ruby-vm.js';
import { openMapping } from '../linux/procfiles.js';
import type { Region } from '../stacks/maps.js';
import { findGlobalSymbols, type RubyNamesLayout } from './ruby-names.js';

/**
 * Offsets per Ruby version, from rbspy's bindgen-generated structs
 * (ruby-structs/src/ruby_3_1_2.rs: offsets computed with offset_of! on those
 * structs) and checked on the running ruby against caller_locations
 * (test/e2e/profile-unwind.test.ts).
 */
export interface RubyLayout {
  /** rb_vm_t.ractor.main_ractor: where the main ractor is found when libruby does not export ruby_single_main_ractor. */
  vm_main_ractor?: number;
  ractor_running_ec: number;
  ec_vm_stack: number;
  ec_vm_stack_size: number;
  ec_cfp: number;
  ec_thread_ptr: number;
  /** 0, or rb_thread_t.nt (3.3: thread_id moved to rb_native_thread). */
  thread_nt: number;
  thread_id: number;
  cfp_size: number;
  cfp_pc: number;
  cfp_iseq: number;
  cfp_ep: number;
  iseq_body: number;
  body_iseq_encoded: number;
  body_location: number;
  /** In rb_iseq_location_t. */
  loc_pathobj: number;
  loc_label: number;
  loc_first_lineno: number;
  body_insns_info: number;
  /** rb_iseq_constant_body.insns_info: body, positions, size. */
  insns_body: number;
  insns_positions: number;
  insns_size: number;
  /** insns_info.succ_index_table: Ruby frees `positions` once this succinct bit vector is built. */
  insns_succ: number;
  insn_entry_size: number;
  /** RString: embedded length in flags bits [shift, shift+5), when not NOEMBED (3.1); 0: a len field (3.3). */
  str_embed_len_shift: number;
  /** RString: where the length is (3.3: always; 3.1: heap strings), the heap pointer, the embedded bytes. */
  str_len: number;
  str_ptr: number;
  str_embed: number;
  /** Method entries, class paths, IDs and GC state (ruby-names.ts); absent: frames keep their bare labels. */
  names?: RubyNamesLayout;
}

const RUBY_3_1: RubyLayout = {
  ractor_running_ec: 304 + 216, ec_vm_stack: 0, ec_vm_stack_size: 8, ec_cfp: 16, ec_thread_ptr: 48, thread_nt: 0, thread_id: 80,
  cfp_size: 64, cfp_pc: 0, cfp_iseq: 16, cfp_ep: 32,
  iseq_body: 16, body_iseq_encoded: 8, body_location: 64, loc_pathobj: 0, loc_label: 16, loc_first_lineno: 24,
  body_insns_info: 120, insns_body: 0, insns_positions: 8, insns_size: 16, insns_succ: 24, insn_entry_size: 12,
  str_embed_len_shift: 14, str_len: 16, str_ptr: 24, str_embed: 16,
  // rb_method_entry_struct, rb_method_definition_struct.original_id, rb_vm_struct.objspace: offset_of!
  // on rbspy's ruby_3_1_2.rs; RClass.ptr, rb_classext_t.iv_tbl, st_table, objspace flags (gc.c: the
  // first field after malloc_params' two words; mode:2, ..., during_gc is bit 5), ID serials
  // (symbol.c: tLAST_OP_ID 0xa9, RUBY_ID_SCOPE_SHIFT 4, as rb_id2str's code in Debian's libruby
  // says): read back on a running 3.1 (test/e2e/profile-unwind.test.ts).
  names: {
    me_def: 16, me_owner: 32, def_original_id: 32, class_ext: 24, ext_iv_tbl: 8,
    st_entries_start: 32, st_entries_bound: 40, st_entries: 48, st_entry_size: 24,
    ary_embed_len_shift: 15, ary_heap_len: 16, ary_heap_ptr: 32, ary_embed: 16,
    last_op_id: 0xa9, id_scope_shift: 4, symbols_ids: 16,
    vm_objspace: 1104, objspace_flags: 16, gc_running_bit: 5,
  },
};

/**
 * From rbspy's ruby_3_3_8.rs the same way, each offset then read back on
 * Debian 13's running ruby 3.3 (test/e2e/profile-unwind.test.ts): rb_vm_t's
 * ractor.main_ractor at 32 (the word after it is main_thread, whose `self` is
 * Thread.current), threads.running_ec (the main thread's ec, as
 * rb_thread_t.ec says), ec->thread_ptr, th->nt->thread_id (the pthread_t:
 * its tcb's self pointer; the next word is the tid), the control frames
 * (56 bytes: no __bp__) and iseq labels, paths and lines as caller_locations
 * says them.
 */
const RUBY_3_3: RubyLayout = {
  vm_main_ractor: 32,
  ractor_running_ec: 256 + 128, ec_vm_stack: 0, ec_vm_stack_size: 8, ec_cfp: 16, ec_thread_ptr: 48, thread_nt: 40, thread_id: 16,
  cfp_size: 56, cfp_pc: 0, cfp_iseq: 16, cfp_ep: 32,
  iseq_body: 16, body_iseq_encoded: 8, body_location: 64, loc_pathobj: 0, loc_label: 16, loc_first_lineno: 24,
  body_insns_info: 112, insns_body: 0, insns_positions: 8, insns_size: 16, insns_succ: 24, insn_entry_size: 12,
  str_embed_len_shift: 0, str_len: 16, str_ptr: 24, str_embed: 24,
  // rbspy's ruby_3_3_8.rs: rb_method_entry_struct and rb_method_definition_struct as in 3.1;
  // RClass is 32 bytes, its rb_classext_t follows it (RCLASS_EXT): attached_object at
  // 32 + 96, classpath at 32 + 120; rb_symbols_t and RArray as in 3.1; objspace flags:
  // the same bitfield after malloc_params (vm_objspace: rb_gc_count's code says it).
  names: {
    me_def: 16, me_owner: 32, def_original_id: 32, class_ext: 0, ext_iv_tbl: 0, class_fields: { classpath: 32 + 120, attached: 32 + 96 },
    st_entries_start: 32, st_entries_bound: 40, st_entries: 48, st_entry_size: 24,
    ary_embed_len_shift: 15, ary_heap_len: 16, ary_heap_ptr: 32, ary_embed: 16,
    last_op_id: 0xa9, id_scope_shift: 4, symbols_ids: 16,
    vm_objspace: 1304, objspace_flags: 16, gc_running_bit: 5,
  },
};

// 3.1 on aarch64: pthread_mutex_t is 48 bytes there (40 on x86-64), two
// before rb_ractor_t.threads.running_ec (sync.lock, gvl.lock); none before
// the other offsets. rb_vm_t.objspace: rb_gc_count's code says (1128).
const RUBY_3_1_ARM64: RubyLayout = { ...RUBY_3_1, ractor_running_ec: RUBY_3_1.ractor_running_ec + 2 * 8 };

/** Layouts by "major.minor", per architecture (3.3 on arm64: not read back there, so none). */
export const RUBY_LAYOUTS: Record<string, RubyLayout> = process.arch === 'arm64' ? { '3.1': RUBY_3_1_ARM64 } : { '3.1': RUBY_3_1, '3.3': RUBY_3_3 };

export interface RubyProcess {
  version: string;
  layout?: RubyLayout;
  /** Runtime address of ruby_single_main_ractor (a pointer variable), 0: the main ractor is found through the VM. */
  mainRactorPtr: number;
  /** The libruby (or static ruby) mapping path. */
  module: string;
  /** Runtime addresses of ruby_current_vm_ptr and of symbol.c's global symbol table (0: not found). */
  vmPtr: number;
  globalSymbols: number;
  /** rb_vm_t.objspace, as rb_gc_count's code reads it (0: not decoded). */
  vmObjspace: number;
}

const LIBRUBY = /\/(libruby[-.][^/]*\.so[^/]*|ruby)$/;

/**
 * Is `regions` a ruby process (a mapped libruby, or a static ruby, exporting
 * ruby_version)? Its version, layout and where its VM is, or undefined.
 * The main ractor: ruby_single_main_ractor where exported (3.1), else
 * ruby_current_vm_ptr's rb_vm_t (3.3: its address decoded from rb_gc_count's
 * code, src/core/elf/ruby-vm.ts).
 */
export function findRuby(pid: number, regions: readonly Region[]): RubyProcess | undefined {
  for (const r of regions) {
    if (!r.file || r.offset !== 0 || !LIBRUBY.test(r.path)) continue;
    let elf: ElfFile;
    try {
      elf = ElfFile.open(openMapping(pid, r));
    } catch {
      continue;
    }
    const syms = elf.symbols();
    const ver = syms.find((s) => s.name === 'ruby_version' && s.shndx !== 0);
    if (!ver) continue;
    const bin = openMapping(pid, r);
    const readAt = (off: number, len: number) => bin.readAt(off, len);
    let version = 'unknown';
    const off = elf.fileOffset(ver.value);
    if (off !== undefined) {
      const b = readAt(off, 16);
      const nul = b.indexOf(0);
      version = b.toString('latin1', 0, nul < 0 ? b.length : nul);
    }
    const mm = /^(\d+\.\d+)/.exec(version);
    const ractor = syms.find((s) => s.name === 'ruby_single_main_ractor' && s.shndx !== 0);
    const vm = findRubyVm(elf, readAt);
    const gs = findGlobalSymbols(elf, syms, readAt);
    // Shared objects and PIEs: the first PT_LOAD is at vaddr 0, file offset 0.
    return {
      version, layout: mm ? RUBY_LAYOUTS[mm[1]] : undefined, mainRactorPtr: ractor ? r.start + ractor.value : 0, module: r.path,
      vmPtr: vm ? r.start + vm.vmPtr : 0, globalSymbols: gs ? r.start + gs : 0, vmObjspace: vm?.vmObjspace ?? 0,
    };
  }
  return undefined;
}

/** Why a ruby's control frames cannot be found (no route to its main ractor), or undefined. */
export function unreachableRuby(p: RubyProcess & { layout: RubyLayout }): string | undefined {
  if (p.mainRactorPtr || (p.vmPtr && p.layout.vm_main_ractor !== undefined)) return undefined;
  return `ruby ${p.version} (${p.module}): neither ruby_single_main_ractor nor ruby_current_vm_ptr was found (rb_gc_count's code is not a form rbtrace decodes), so only its native frames are shown`;
}

/** The rbstack_ruby map value for a process (the BPF walk's offsets). */
export function bpfRubyValue(p: RubyProcess & { layout: RubyLayout }): {
  main_ractor_ptr: number; vm_main_ractor: number; ractor_running_ec: number; ec_vm_stack: number; ec_vm_stack_size: number; ec_cfp: number;
  ec_thread_ptr: number; thread_nt: number; thread_id: number; cfp_size: number; cfp_pc: number; cfp_iseq: number; cfp_ep: number;
  vm_ptr: number; vm_objspace: number; objspace_flags: number; gc_running_bit: number;
} {
  const l = p.layout;
  const n = l.names;
  return {
    // rb_gc_count's own offset where decoded (arm64's rb_vm_t is larger: its mutexes are)
    vm_ptr: p.vmPtr, vm_objspace: n ? p.vmObjspace || n.vm_objspace : 0, objspace_flags: n?.objspace_flags ?? 0, gc_running_bit: n?.gc_running_bit ?? 0,
    main_ractor_ptr: p.mainRactorPtr, vm_main_ractor: p.mainRactorPtr ? 0 : l.vm_main_ractor ?? 0, ractor_running_ec: l.ractor_running_ec, ec_vm_stack: l.ec_vm_stack,
    ec_vm_stack_size: l.ec_vm_stack_size, ec_cfp: l.ec_cfp, ec_thread_ptr: l.ec_thread_ptr, thread_nt: l.thread_nt, thread_id: l.thread_id,
    cfp_size: l.cfp_size, cfp_pc: l.cfp_pc, cfp_iseq: l.cfp_iseq, cfp_ep: l.cfp_ep,
  };
}

export interface RubyFrameInfo {
  label: string;
  path: string;
  line: number;
}

interface IseqInfo {
  label: string;
  path: string;
  firstLine: number;
  encoded: number;
  positions?: Uint32Array;
  lines?: Int32Array;
  /** Address of the succinct index table (when positions was freed). */
  succ?: number;
  /** pos -> line, when read through the succinct table. */
  lineAt?: Map<number, number>;
}

// iseq.c (VM_INSN_INFO_TABLE_IMPL 2): ranks of the first 54 positions in
// 6 words of 9 x 7 bits, then blocks of 512 bits: { u32 rank; u64 small
// ranks (7 x 9 bits); u64 bits[8] } (80 bytes, 8-aligned).
const IMMEDIATE_TABLE_SIZE = 54;
const SUCC_BLOCK_SIZE = 80;
const MASK64 = (1n << 64n) - 1n;

function popcount64(v: bigint): number {
  let n = 0;
  for (let x = v; x; x &= x - 1n) n++;
  return n;
}

const T_MASK = 0x1f;
const T_STRING = 0x05;
const T_ARRAY = 0x07;
const FL_USER1 = 1 << 13; // RSTRING_NOEMBED / RARRAY_EMBED_FLAG (as FL_USER1)

/** Reads one process's memory; caches what an iseq says (iseqs are not moved without GC.compact). */
export class RubyMemory {
  private fd = -1;
  private readonly iseqs = new Map<number, IseqInfo | null>();

  constructor(readonly pid: number, readonly layout: RubyLayout) {}

  read(addr: number, len: number): Buffer | undefined {
    if (this.fd < 0) {
      try {
        this.fd = openSync(`/proc/${this.pid}/mem`, 'r');
      } catch {
        return undefined;
      }
    }
    const b = Buffer.alloc(len);
    try {
      return readSync(this.fd, b, 0, len, addr) === len ? b : undefined;
    } catch {
      return undefined;
    }
  }

  word(addr: number): number | undefined {
    const b = this.read(addr, 8);
    return b ? b.readUInt32LE(0) + b.readUInt32LE(4) * 0x1_0000_0000 : undefined;
  }

  /** A Ruby String's contents (at most 4 KiB). */
  rstring(v: number): string | undefined {
    const flags = this.word(v);
    if (flags === undefined || (flags & T_MASK) !== T_STRING) return undefined;
    let len: number;
    let ptr: number;
    const l = this.layout;
    if (flags & FL_USER1) {
      len = this.word(v + l.str_len) ?? 0;
      ptr = this.word(v + l.str_ptr) ?? 0;
    } else {
      len = l.str_embed_len_shift ? (flags >>> l.str_embed_len_shift) & 0x1f : this.word(v + l.str_len) ?? 0;
      ptr = v + l.str_embed;
    }
    if (len === 0) return '';
    const b = this.read(ptr, Math.min(len, 4096));
    return b?.toString('utf8');
  }

  /** pathobj: a String, or an Array [path, realpath]. */
  private path(v: number): string {
    const flags = this.word(v);
    if (flags === undefined) return '?';
    if ((flags & T_MASK) === T_ARRAY) {
      const first = flags & FL_USER1 ? this.word(v + 16) : this.word((this.word(v + 32) ?? 0));
      return first === undefined ? '?' : this.rstring(first) ?? '?';
    }
    return this.rstring(v) ?? '?';
  }

  private iseq(addr: number): IseqInfo | undefined {
    const had = this.iseqs.get(addr);
    if (had !== undefined) return had ?? undefined;
    const l = this.layout;
    let info: IseqInfo | null = null;
    const body = this.word(addr + l.iseq_body);
    if (body) {
      const loc = body + l.body_location;
      const label = this.word(loc + l.loc_label);
      const pathobj = this.word(loc + l.loc_pathobj);
      const first = this.word(loc + l.loc_first_lineno);
      const labelText = label ? this.rstring(label) : undefined;
      if (labelText !== undefined) {
        info = {
          label: labelText, path: pathobj ? this.path(pathobj) : '?', firstLine: first === undefined ? 0 : Math.floor(first / 2),
          encoded: this.word(body + l.body_iseq_encoded) ?? 0,
        };
        this.lineTable(info, body + l.body_insns_info);
      }
    }
    this.iseqs.set(addr, info);
    return info ?? undefined;
  }

  private lineTable(info: IseqInfo, insns: number): void {
    const l = this.layout;
    const entries = this.word(insns + l.insns_body);
    const positions = this.word(insns + l.insns_positions);
    const sizeBuf = this.read(insns + l.insns_size, 4);
    const n = sizeBuf?.readUInt32LE(0) ?? 0;
    if (!entries || n === 0 || n > 1_000_000) return;
    const eb = this.read(entries, n * l.insn_entry_size);
    if (!eb) return;
    info.lines = new Int32Array(n);
    for (let i = 0; i < n; i++) info.lines[i] = eb.readInt32LE(i * l.insn_entry_size);
    const pb = positions ? this.read(positions, n * 4) : undefined;
    if (pb) {
      info.positions = new Uint32Array(n);
      for (let i = 0; i < n; i++) info.positions[i] = pb.readUInt32LE(i * 4);
    } else {
      info.succ = this.word(insns + l.insns_succ) || undefined;
      info.lineAt = new Map();
    }
  }

  /** iseq.c succ_index_lookup: how many instruction-info entries start at or before `pos`. */
  private succRank(table: number, pos: number): number | undefined {
    if (pos < IMMEDIATE_TABLE_SIZE) {
      const w = this.read(table + Math.floor(pos / 9) * 8, 8);
      return w ? Number((w.readBigUInt64LE(0) >> BigInt((pos % 9) * 7)) & 0x7fn) : undefined;
    }
    const x = pos - IMMEDIATE_TABLE_SIZE;
    const b = this.read(table + (IMMEDIATE_TABLE_SIZE / 9) * 8 + Math.floor(x / 512) * SUCC_BLOCK_SIZE, SUCC_BLOCK_SIZE);
    if (!b) return undefined;
    const bit = x % 512;
    const small = Math.floor(bit / 64);
    const smallRank = small === 0 ? 0 : Number((b.readBigUInt64LE(8) >> BigInt((small - 1) * 9)) & 0x1ffn);
    const word = b.readBigUInt64LE(16 + small * 8);
    return b.readUInt32LE(0) + smallRank + popcount64((word << BigInt(63 - (bit % 64))) & MASK64);
  }

  private line(info: IseqInfo, pos: number): number {
    const lines = info.lines!;
    if (lines.length === 1) return lines[0];
    if (info.positions) {
      let lo = 0;
      let hi = info.positions.length - 1;
      let at = 0;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (info.positions[mid] <= pos) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return lines[at];
    }
    let line = info.lineAt?.get(pos);
    if (line === undefined) {
      const rank = info.succ ? this.succRank(info.succ, pos) : undefined;
      line = rank !== undefined && rank >= 1 && rank <= lines.length ? lines[rank - 1] : info.firstLine;
      info.lineAt?.set(pos, line);
    }
    return line;
  }

  /** Label, path and current line of a control frame, as Ruby's backtrace says them. */
  frame(iseq: number, pc: number): RubyFrameInfo | undefined {
    const info = this.iseq(iseq);
    if (!info) return undefined;
    let line = info.firstLine;
    if (pc && info.lines && pc >= info.encoded) {
      // vm_backtrace.c calc_pos: pc points past the instruction being run.
      let pos = Math.floor((pc - info.encoded) / 8);
      if (pos > 0) pos--;
      line = this.line(info, pos);
    }
    return { label: info.label, path: info.path, line };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
