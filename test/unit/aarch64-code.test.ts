// src/core/elf/aarch64.ts and the aarch64 decoders built on it, on the
// bytes of Debian 12's arm64 libruby 3.1.2 (llvm-objdump's reading of them
// in the comments).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { arm64Root } from '../helpers.js';
import { adrp, branch, ldr } from '../../src/core/elf/aarch64.js';
import { ElfFile } from '../../src/core/elf/elf.js';
import { decodeGcCountAarch64, findRubyVm } from '../../src/core/elf/ruby-vm.js';
import { openFile } from '../../src/core/linux/procfiles.js';
import { findGlobalSymbols } from '../../src/core/unwind/ruby-names.js';

const code = (...w: number[]): Buffer => {
  const b = Buffer.alloc(w.length * 4);
  w.forEach((x, i) => b.writeUInt32LE(x, i * 4));
  return b;
};

test('adrp, ldr and b read as llvm-objdump reads them', () => {
  assert.deepEqual(adrp(0x1f6170, 0xd0000c40), { rd: 0, page: 0x380000 }); // adrp x0, 0x380000
  assert.deepEqual(ldr(0xb9418001, 4), { rt: 1, rn: 0, off: 384 });         // ldr w1, [x0, #384]
  assert.equal(ldr(0xb9418001, 8), undefined);
  assert.equal(branch(0x1f8430, 0x17fff73d), 0x1f6124);                    // b 0x1f6124 (backwards)
  assert.equal(adrp(0, 0xf9400000), undefined);
});

test('rb_gc_count of the arm64 libruby 3.1.2: objspace at 1128, count at 440 (the VM pointer is exported)', () => {
  // adrp x0, 0x37f000; ldr x0, [x0, #3072]; ldr x0, [x0]; ldr x0, [x0, #1128]; ldr x0, [x0, #440]; ret
  const rb = code(0xd00015a0, 0xf9460000, 0xf9400000, 0xf9423400, 0xf940dc00, 0xd65f03c0, 0xd503201f, 0xd503201f);
  assert.deepEqual(decodeGcCountAarch64(rb, 0xc96e0), { vmObjspace: 1128, count: 440 });
  // The hidden form: the VM pointer straight from adrp's page + the first load's offset.
  assert.deepEqual(decodeGcCountAarch64(code(0xd00015a0, 0xf9460000, 0xf9423400, 0xf940dc00, 0xd65f03c0), 0xc96e0), { vmPtrAddr: 0x37f000 + 3072, vmObjspace: 1128, count: 440 });
  assert.equal(decodeGcCountAarch64(code(0xd503201f, 0xd65f03c0), 0), undefined);
});

// The whole files, each decoded by its own e_machine (symbol table: the
// address of last_id; the VM: rb_gc_count's offsets). x86-64's numbers are
// the ones its layout had before (ruby.ts).
const A64_ROOT = arm64Root();
const LIBS: [string, number, number][] = [
  [`${A64_ROOT ?? 'test/vm/cache/arm64-root'}/usr/lib/aarch64-linux-gnu/libruby-3.1.so.3.1.2`, 0x380180, 1128],
  ['/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2', 0x3af1c0, 1104],
];
for (const [lib, symbols, objspace] of LIBS) {
  test(`${lib}: the symbol table at 0x${symbols.toString(16)}, rb_vm_t.objspace at ${objspace}`, { skip: existsSync(lib) ? false : `${lib} absent` }, () => {
    const file = openFile(lib);
    const elf = ElfFile.open(file);
    const readAt = (o: number, n: number) => file.readAt(o, n);
    assert.equal(findGlobalSymbols(elf, elf.symbols(), readAt), symbols);
    assert.equal(findRubyVm(elf, readAt)?.vmObjspace, objspace);
  });
}
