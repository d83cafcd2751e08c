// The ELF reader and demangler behind strlat --func (src/core/elf/elf.ts, src/core/elf/demangle.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElfFile } from '../../src/core/elf/elf.js';
import { demangle, normalizeFunctionQuery } from '../../src/core/elf/demangle.js';

test('demangles Rust legacy, Rust v0 and Itanium C++ names to qualified names', () => {
  // Real symbols from rustc 1.8x (legacy and -C symbol-mangling-version=v0) and g++.
  assert.equal(demangle('_ZN1m3app5parse17hff56de17869cc293E'), 'm::app::parse');
  assert.equal(demangle('_RNvNtCskK7mfDs1mzF_1m3app5parse'), 'm::app::parse');
  assert.equal(demangle('_RNvMNtCskK7mfDs1mzF_1m3appNtB2_3Foo3bar'), 'm::app::Foo::bar');
  assert.equal(demangle('_RNvXsc_NtNtCsgEmfK2I1SDS_4core3num5errorNtB5_13ParseIntErrorNtNtB9_3fmt5Debug3fmt'),
    '<core::num::error::ParseIntError as core::fmt::Debug>::fmt');
  assert.equal(demangle('_ZN3foo3Bar6methodEi'), 'foo::Bar::method');
  assert.equal(demangle('_ZNK3foo3BarIiE3getEv'), 'foo::Bar::get');
  assert.equal(demangle('_ZN3app5parseERKSt6vector'), 'app::parse');
  assert.equal(demangle('_Z4workv'), 'work');
  assert.equal(demangle('_ZN3std2io5stdio6_print17h1234567890abcdefE'), 'std::io::stdio::_print');
  assert.equal(demangle('malloc'), undefined);
  assert.equal(normalizeFunctionQuery(' ::app::parse(int) const'), 'app::parse');
});

test('reads the USDT notes and symbols of the system libruby', () => {
  const elf = ElfFile.open('/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1');
  const gc = elf.sdtNotes().filter((n) => n.provider === 'ruby' && n.name.startsWith('gc__')).map((n) => n.name);
  for (const name of ['gc__mark__begin', 'gc__mark__end', 'gc__sweep__begin', 'gc__sweep__end']) assert.ok(gc.includes(name), name);
  assert.ok(elf.sdtNotes().every((n) => n.semaphore !== 0), 'Debian ruby probes have semaphores');
  assert.ok(elf.definesFunction('rb_str_new'));
  const sym = elf.functions().find((s) => s.name === 'rb_str_new')!;
  assert.ok(elf.fileOffset(sym.value)! > 0);
  assert.ok(elf.needed().some((n) => n.startsWith('libc.so')));
});

test('--func lists and patterns: split at top-level commas, patterns matched against libruby\'s symbols, capped', async () => {
  const { splitFunctionList, isFunctionPattern, resolveFunctions, isGoBinary } = await import('../../src/core/bpf/uprobes.js');
  assert.deepEqual(splitFunctionList('malloc, free,,calloc'), ['malloc', 'free', 'calloc']);
  assert.deepEqual(splitFunctionList('ns::f<int, long>(int, char),g'), ['ns::f<int, long>(int, char)', 'g']);
  assert.ok(isFunctionPattern('rb_str_*') && isFunctionPattern('f?') && isFunctionPattern('f[ab]') && !isFunctionPattern('app::parse'));
  const lib = '/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1';
  const elf = ElfFile.open(lib);
  const all = new Set(elf.functions().map((s) => s.name));
  const named = resolveFunctions(lib, ['rb_str_new', 'rb_str_new_*', 'rb_ary_new_capa'], 64);
  const names = named.map((n) => n.name);
  assert.equal(names[0], 'rb_str_new');
  assert.ok(names.includes('rb_str_new_cstr') && names.includes('rb_ary_new_capa'));
  assert.ok(names.every((n) => n === 'rb_str_new' || n === 'rb_ary_new_capa' || (n.startsWith('rb_str_new_') && all.has(n))));
  // every address timed once, whatever names reach it
  const addrs = named.flatMap((n) => n.funcs.map((f) => f.address));
  assert.equal(new Set(addrs).size, addrs.length);
  assert.deepEqual(resolveFunctions(lib, ['rb_str_ne[w]'], 64).map((n) => n.name), ['rb_str_new']);
  assert.throws(() => resolveFunctions(lib, ['rb_*'], 64), /matches \d+ functions .* more than the 64/);
  assert.throws(() => resolveFunctions(lib, ['rb_*'], 64), (e: Error) => e.name === 'UsageError');
  assert.equal(isGoBinary(lib), false);
});
