// Where a libruby (or static ruby) keeps its VM, read from the file alone:
// the address of ruby_current_vm_ptr and the offsets rb_gc_count's code
// uses. 3.1 exports ruby_current_vm_ptr; Debian 13's 3.3 hides it (no
// .symtab, no debug symbols), but rb_gc_count (`return
// GET_VM()->objspace->profile.count;`) is exported and loads it with a
// RIP-relative lea, so its machine code says where it is. Shared by gcstat
// (the GC counters) and profile --unwind dwarf (the main ractor, the GC
// state).
import { adrp, elfMachine, EM_AARCH64, ldr, RET, words } from './aarch64.js';
import { stripVersion, type ElfFile } from './elf.js';

export interface RubyVmAddress {
  /** Link-time address of ruby_current_vm_ptr (a pointer variable). */
  vmPtr: number;
  /** rb_vm_t.objspace and rb_objspace_t.profile.count, from rb_gc_count's loads. */
  vmObjspace: number;
  count: number;
}

/**
 * x86_64 rb_gc_count, `[endbr64;] X; mov (%rax),%rax; mov A(%rax),%rax; mov B(%rax),%rax; ret`:
 * X is `mov rip(GOT),%rax` where ruby_current_vm_ptr is exported (3.1: its
 * address is the symbol's), or `lea ruby_current_vm_ptr(%rip),%rax` where it
 * is hidden (3.3: its address is decoded from the lea). `addr`: the code's
 * link-time address.
 */
export function decodeGcCount(code: Buffer, addr: number): { vmPtrAddr?: number; vmObjspace: number; count: number } | undefined {
  let i = code[0] === 0xf3 && code[1] === 0x0f && code[2] === 0x1e && code[3] === 0xfa ? 4 : 0;
  if (!(code[i] === 0x48 && (code[i + 1] === 0x8b || code[i + 1] === 0x8d) && code[i + 2] === 0x05)) return undefined;
  const vmPtrAddr = code[i + 1] === 0x8d ? addr + i + 7 + code.readInt32LE(i + 3) : undefined;
  i += 7;
  if (!(code[i] === 0x48 && code[i + 1] === 0x8b && code[i + 2] === 0x00)) return undefined;
  i += 3;
  const offs: number[] = [];
  for (let k = 0; k < 2; k++) {
    if (code[i] !== 0x48 || code[i + 1] !== 0x8b) return undefined;
    if (code[i + 2] === 0x80) { offs.push(code.readUInt32LE(i + 3)); i += 7; } else if (code[i + 2] === 0x40) { offs.push(code[i + 3]); i += 4; } else return undefined;
  }
  return code[i] === 0xc3 ? { ...(vmPtrAddr !== undefined ? { vmPtrAddr } : {}), vmObjspace: offs[0], count: offs[1] } : undefined;
}

/**
 * aarch64 rb_gc_count, `adrp x0, P; ldr x0, [x0, #G]; ldr x0, [x0]; ldr x0,
 * [x0, #A]; ldr x0, [x0, #B]; ret` where ruby_current_vm_ptr is exported
 * (Debian 12's 3.1.2: a GOT load, then the pointer's value; its address is
 * the symbol's). A hidden one would be loaded straight from P + G (`adrp;
 * ldr; ldr A; ldr B; ret`): decoded as such, not seen on a real 3.3 arm64
 * build yet.
 */
export function decodeGcCountAarch64(code: Buffer, addr: number): { vmPtrAddr?: number; vmObjspace: number; count: number } | undefined {
  const [first, ...rest] = words(addr, code);
  const page = first && adrp(first.pc, first.w);
  if (!page) return undefined;
  const loads = [];
  let reg = page.rd;
  for (const { w } of rest) {
    if (w === RET) break;
    const l = ldr(w, 8);
    if (!l || l.rn !== reg) return undefined;
    loads.push(l);
    reg = l.rt;
  }
  if (loads.length === 4 && loads[1].off === 0) return { vmObjspace: loads[2].off, count: loads[3].off };
  if (loads.length === 3) return { vmPtrAddr: page.page + loads[0].off, vmObjspace: loads[1].off, count: loads[2].off };
  return undefined;
}

/** ruby_current_vm_ptr (the symbol, else decoded) and the objspace offsets; undefined when rb_gc_count is not the form decoded. */
export function findRubyVm(elf: ElfFile, readAt: (fileOffset: number, len: number) => Buffer): RubyVmAddress | undefined {
  const sym = (name: string) => elf.symbols().find((s) => s.shndx !== 0 && stripVersion(s.name) === name);
  const gcCount = sym('rb_gc_count');
  const off = gcCount ? elf.fileOffset(gcCount.value) : undefined;
  const decode = elfMachine(readAt) === EM_AARCH64 ? decodeGcCountAarch64 : decodeGcCount;
  const decoded = gcCount && off !== undefined ? decode(readAt(off, 32), gcCount.value) : undefined;
  const vmPtr = sym('ruby_current_vm_ptr')?.value ?? decoded?.vmPtrAddr;
  return decoded && vmPtr !== undefined ? { vmPtr, vmObjspace: decoded.vmObjspace, count: decoded.count } : undefined;
}
