// Names Ruby's own backtraces (3.4's style) give frames, read from outside
// the process: a method entry's owner class path and method name (`Foo#bar`,
// `Foo.bar` for a singleton method, `Array#each` for a C method), IDs named
// through symbol.c's global symbol table, as rbspy does.
//
// Debian's libruby exports neither `ruby_global_symbols` nor a .symtab, so
// the table's address is taken from rb_id2str's own code: it reads the
// table's `last_id` with a RIP-relative `cmp %edi, disp(%rip)` (x86-64), or
// an `adrp` + `ldr w` pair (aarch64).
import { adrp, branch, elfMachine, EM_AARCH64, EM_X86_64, ldr, RET, words } from '../elf/aarch64.js';
import type { ElfFile, ElfSymbol } from '../elf/elf.js';
import type { RubyMemory } from './ruby.js';

export interface RubyNamesLayout {
  /** rb_method_entry_struct: def, owner; rb_method_definition_struct.original_id. */
  me_def: number;
  me_owner: number;
  def_original_id: number;
  /** RClass.ptr (rb_classext_t*), rb_classext_t.iv_tbl (st_table*): where 3.1 keeps `__classpath__` and `__attached__`. */
  class_ext: number;
  ext_iv_tbl: number;
  /**
   * 3.3: a class's path and a singleton class's object are fields of the
   * rb_classext_t that follows the RClass (classpath, as.singleton_class.attached_object):
   * their offsets from the class. Absent: the 3.1 ivars.
   */
  class_fields?: { classpath: number; attached: number };
  st_entries_start: number;
  st_entries_bound: number;
  st_entries: number;
  st_entry_size: number;
  /** RArray: embedded length bits (flags >> shift, 7 bits), heap len/ptr, embedded elements. */
  ary_embed_len_shift: number;
  ary_heap_len: number;
  ary_heap_ptr: number;
  ary_embed: number;
  /** symbol.c rb_id_to_serial: IDs above tLAST_OP_ID are serial << RUBY_ID_SCOPE_SHIFT. */
  last_op_id: number;
  id_scope_shift: number;
  /** rb_symbols_t.ids (after u32 last_id and st_table *str_sym). */
  symbols_ids: number;
  /** rb_vm_struct.objspace, rb_objspace.flags, and the bit of flags set while the GC runs (during_gc). */
  vm_objspace: number;
  objspace_flags: number;
  gc_running_bit: number;
}

const T_MASK = 0x1f;
const T_CLASS = 0x02;
const T_MODULE = 0x03;
const T_ARRAY = 0x07;
const T_ICLASS = 0x1c;
const FL_SINGLETON = 1 << 12; // FL_USER0 on a class
const RARRAY_EMBED = 1 << 13; // FL_USER1
const ID_ENTRY_UNIT = 512; // symbol.c: IDs per entry array, two slots (string, symbol) each
const MAX_IVARS = 256;

/**
 * The global symbol table's link-time address, from rb_id2str's code, which
 * tail-calls get_id_serial_entry, whose first read of a global is last_id,
 * the table's first field. Decoded per e_machine (x86-64 bytes occur by
 * chance in aarch64 code, and the other way round).
 */
export function findGlobalSymbols(elf: ElfFile, syms: ElfSymbol[], readAt: (off: number, len: number) => Buffer): number | undefined {
  const fn = syms.find((s) => s.name === 'rb_id2str' && s.shndx !== 0);
  if (!fn) return undefined;
  const code = (vaddr: number): Buffer | undefined => {
    const off = elf.fileOffset(vaddr);
    return off === undefined ? undefined : readAt(off, 160);
  };
  const machine = elfMachine(readAt);
  if (machine === EM_AARCH64) return lastIdAarch64(fn.value, code);
  if (machine !== EM_X86_64) return undefined;
  // x86-64: a leading `jmp rel32`, then the first `cmp %edi, disp32(%rip)` (39 3d).
  let at = fn.value;
  let b = code(at);
  for (let i = 0; b && i < 32; i++) {
    if (b[i] === 0xe9) {
      at = at + i + 5 + b.readInt32LE(i + 1);
      b = code(at);
      break;
    }
  }
  for (let i = 0; b && i + 6 <= b.length; i++) {
    if (b[i] === 0x39 && b[i + 1] === 0x3d) return at + i + 6 + b.readInt32LE(i + 2);
  }
  return undefined;
}

/**
 * aarch64 (Debian 12's 3.1.2): rb_id2str ends in `b get_id_serial_entry`,
 * which loads last_id as `adrp xN, page; ...; ldr wM, [xN, #off]`, the first
 * 32-bit load from an adrp base (the 64-bit ones before it are GOT loads:
 * the stack guard).
 */
function lastIdAarch64(fn: number, code: (vaddr: number) => Buffer | undefined): number | undefined {
  const tail = words(fn, code(fn)).slice(0, 8).map((x) => branch(x.pc, x.w)).find((t) => t !== undefined);
  if (tail === undefined) return undefined;
  const pages = new Map<number, number>();
  for (const { pc, w } of words(tail, code(tail))) {
    const a = adrp(pc, w);
    const l = ldr(w, 4);
    if (a) pages.set(a.rd, a.page);
    else if (l && pages.has(l.rn)) return pages.get(l.rn)! + l.off;
    else if (branch(pc, w) !== undefined || w === RET) break; // past the entry
  }
  return undefined;
}

export interface MethodName {
  /** `Foo#bar`, `Foo.bar`, or the bare method name when the class has no path. */
  qualified: string;
  method: string;
  owner: string;
}

/** IDs, class paths and method entries of one process; cached (IDs, classes and method entries do not move without GC.compact). */
export class RubyNames {
  private readonly ids = new Map<number, string | undefined>();
  private readonly classes = new Map<number, { path: string; singleton: boolean } | undefined>();
  private readonly mes = new Map<number, MethodName | undefined>();

  constructor(private readonly mem: RubyMemory, private readonly l: RubyNamesLayout, private readonly symbols: number) {}

  /** Element `i` of a Ruby Array. */
  private aref(ary: number, i: number): number | undefined {
    const flags = this.mem.word(ary);
    if (flags === undefined || (flags & T_MASK) !== T_ARRAY) return undefined;
    const embedded = (flags & RARRAY_EMBED) !== 0;
    const len = embedded ? (flags >>> this.l.ary_embed_len_shift) & 0x7f : this.mem.word(ary + this.l.ary_heap_len) ?? 0;
    if (i >= len) return undefined;
    const ptr = embedded ? ary + this.l.ary_embed : this.mem.word(ary + this.l.ary_heap_ptr);
    return ptr ? this.mem.word(ptr + i * 8) : undefined;
  }

  /** symbol.c lookup_id_str. */
  id2str(id: number): string | undefined {
    if (this.ids.has(id)) return this.ids.get(id);
    let name: string | undefined;
    const serial = id > this.l.last_op_id ? Math.floor(id / 2 ** this.l.id_scope_shift) : id;
    const last = this.mem.read(this.symbols, 4)?.readUInt32LE(0);
    const table = this.mem.word(this.symbols + this.l.symbols_ids);
    if (this.symbols && last !== undefined && table && serial > 0 && serial <= last) {
      const unit = this.aref(table, Math.floor(serial / ID_ENTRY_UNIT));
      const str = unit ? this.aref(unit, (serial % ID_ENTRY_UNIT) * 2) : undefined;
      name = str ? this.mem.rstring(str) : undefined;
    }
    this.ids.set(id, name);
    return name;
  }

  /** An instance variable of a class or module (variable.c: RCLASS_IV_TBL, an st_table of ID -> VALUE). */
  private classIvar(klass: number, name: string): number | undefined {
    const ext = this.mem.word(klass + this.l.class_ext);
    const tbl = ext ? this.mem.word(ext + this.l.ext_iv_tbl) : undefined;
    if (!tbl) return undefined;
    const start = this.mem.word(tbl + this.l.st_entries_start) ?? 0;
    const bound = this.mem.word(tbl + this.l.st_entries_bound) ?? 0;
    const entries = this.mem.word(tbl + this.l.st_entries);
    if (!entries || bound <= start || bound - start > MAX_IVARS) return undefined;
    const b = this.mem.read(entries + start * this.l.st_entry_size, (bound - start) * this.l.st_entry_size);
    for (let i = 0; b && i < bound - start; i++) {
      const o = i * this.l.st_entry_size;
      const key = b.readUInt32LE(o + 8) + b.readUInt32LE(o + 12) * 0x1_0000_0000;
      if (key && this.id2str(key) === name) return b.readUInt32LE(o + 16) + b.readUInt32LE(o + 20) * 0x1_0000_0000;
    }
    return undefined;
  }

  /** A class's path (`A::B`), or, for a singleton class, its object's: Ruby's `__classpath__` and `__attached__` ivars. */
  classPath(klass: number): { path: string; singleton: boolean } | undefined {
    if (this.classes.has(klass)) return this.classes.get(klass);
    let out: { path: string; singleton: boolean } | undefined;
    const flags = this.mem.word(klass);
    const type = flags === undefined ? -1 : flags & T_MASK;
    if (flags !== undefined && (type === T_CLASS || type === T_MODULE || type === T_ICLASS)) {
      const fields = this.l.class_fields;
      if (flags & FL_SINGLETON) {
        const obj = fields ? this.mem.word(klass + fields.attached) : this.classIvar(klass, '__attached__');
        const of = obj ? this.classPath(obj) : undefined;
        if (of) out = { path: of.path, singleton: true };
      } else {
        const path = fields ? this.mem.word(klass + fields.classpath) : this.classIvar(klass, '__classpath__');
        const s = path ? this.mem.rstring(path) : undefined;
        if (s) out = { path: s, singleton: false };
      }
    }
    this.classes.set(klass, out);
    return out;
  }

  /** A method entry's names: Ruby 3.4's `Owner#method` / `Owner.method` (vm_backtrace.c's calc_method_name). */
  method(me: number): MethodName | undefined {
    if (this.mes.has(me)) return this.mes.get(me);
    let out: MethodName | undefined;
    const def = this.mem.word(me + this.l.me_def);
    const id = def ? this.mem.word(def + this.l.def_original_id) : undefined;
    const method = id ? this.id2str(id) : undefined;
    if (method !== undefined) {
      const owner = this.mem.word(me + this.l.me_owner);
      const cls = owner ? this.classPath(owner) : undefined;
      out = { method, owner: cls?.path ?? '', qualified: cls ? `${cls.path}${cls.singleton ? '.' : '#'}${method}` : method };
    }
    this.mes.set(me, out);
    return out;
  }
}

/**
 * An iseq frame's label with its class, as Ruby 3.4 writes it: a method's
 * `bar` -> `Foo#bar`, `block in bar` -> `block in Foo#bar`; `<main>`,
 * `<top (required)>`, `<class:Foo>` stay.
 */
export function qualifyLabel(label: string, m: MethodName | undefined): string {
  if (!m || m.qualified === m.method) return label;
  if (label === m.method) return m.qualified;
  const block = /^(block (?:\(\d+ levels\) )?in )(.*)$/.exec(label);
  if (block && block[2] === m.method) return block[1] + m.qualified;
  return label;
}
