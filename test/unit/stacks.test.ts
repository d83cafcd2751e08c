// Stack symbolization (src/core/stacks/) against independent oracles on real
// binaries: nm (symbol addresses of libc, python3 and the libc debuginfo of
// libc6-dbg), c++filt (C++ and Rust names), /proc/kallsyms read by a shell
// pipeline, and a real process that exits before its stacks are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelSymbols, Symbolizer, parseMaps, readBuildId, foldedLine, symbolTableFor } from '../../src/core/stacks/index.js';
import { ElfFile } from '../../src/core/elf/elf.js';
import { demangle } from '../../src/core/elf/demangle.js';
import { openFile } from '../../src/core/linux/procfiles.js';
import { buildC, sleep } from '../helpers.js';

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

/** nm's defined functions of a file: address -> names (aliases share an address). */
function nmFunctions(path: string, dynamic: boolean): Map<number, Set<string>> {
  const out = execFileSync('nm', ['-S', ...(dynamic ? ['-D'] : []), '--defined-only', path], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const m = new Map<number, Set<string>>();
  for (const line of out.split('\n')) {
    // "addr size type name"; a function of one byte (or no size) has no inside to sample
    const [addr, size, type, name] = line.split(' ');
    if (!name || !/^[TtWwi]$/.test(type) || parseInt(size, 16) < 2) continue;
    const a = parseInt(addr, 16);
    if (!m.has(a)) m.set(a, new Set());
    m.get(a)!.add(name.replace(/@.*$/, ''));
  }
  return m;
}

/** Every 'step'-th element: a deterministic sample spread over the whole table. */
function spread<T>(xs: T[], n: number): T[] {
  const step = Math.max(1, Math.floor(xs.length / n));
  return xs.filter((_, i) => i % step === 0).slice(0, n);
}

function startSleeper(): { pid: number; kill: () => Promise<void> } {
  const child = spawn('/usr/bin/python3', ['-c', 'import time; time.sleep(60)'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { pid: child.pid!, kill: async () => { child.kill('SIGKILL'); await exited; } };
}

async function mapsOf(pid: number) {
  // python3 maps libc once it has started: wait for it (bounded).
  for (let i = 0; i < 100; i++) {
    const regions = parseMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'));
    if (regions.some((r) => r.path.endsWith('/libc.so.6'))) return regions;
    await sleep(20);
  }
  throw new Error('python3 never mapped libc');
}

test('kernel frames: every sampled function of /proc/kallsyms is found by an address inside it', () => {
  const k = new KernelSymbols();
  assert.ok(k.available, k.unavailable);
  // Oracle: the text symbols, read by sort(1) rather than by our parser.
  const sorted = execFileSync('sh', ['-c', "grep -E '^[0-9a-f]+ [tTwW] ' /proc/kallsyms | sort -k1,1"],
    { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n').map((l) => l.split(/\s+/));
  const byAddr = new Map<string, string[]>();
  for (const r of sorted) byAddr.set(r[0], [...(byAddr.get(r[0]) ?? []), r[2]]);
  let checked = 0;
  for (let i = 1; i + 1 < sorted.length; i += Math.floor(sorted.length / 500)) {
    const [a, , name] = sorted[i];
    const addr = BigInt(`0x${a}`);
    const next = BigInt(`0x${sorted[i + 1][0]}`);
    if (next <= addr + 1n) continue; // an alias: several names at one address
    const hit = k.lookup(addr + 1n)!;
    const aliases = byAddr.get(a)!;
    assert.ok(aliases.includes(hit.name), `0x${a}+1: ${hit.name}, kallsyms says ${name}`);
    assert.equal(hit.offset, 1n);
    checked++;
  }
  assert.ok(checked > 300, `only ${checked} checked`);
  const hidden = new KernelSymbols('0000000000000000 T _stext\n0000000000000000 T vfs_read\n');
  assert.equal(hidden.available, false);
  assert.match(hidden.unavailable!, /kptr_restrict/);
});

test('user frames of a live python3: libc (.dynsym) and python3 functions named as nm names them', async () => {
  const p = startSleeper();
  try {
    const regions = await mapsOf(p.pid);
    const s = new Symbolizer();
    s.notePid(p.pid);
    for (const [path, want] of [[LIBC, 300], ['/usr/bin/python3.11', 300]] as const) {
      const real = execFileSync('readlink', ['-f', path], { encoding: 'utf8' }).trim();
      const base = regions.find((r) => r.path === real && r.offset === 0)!;
      assert.ok(base, `${real} mapped`);
      // The load bias, from readelf: python3 is not PIE (its first PT_LOAD is at 0x400000), libc is.
      const firstLoad = parseInt(execFileSync('sh', ['-c', `readelf -lW ${real} | awk '$1 == "LOAD" { print $3; exit }'`], { encoding: 'utf8' }), 16);
      const bias = base.start - firstLoad;
      const funcs = nmFunctions(real, true);
      const addrs = spread([...funcs.keys()].sort((a, b) => a - b), want);
      let named = 0;
      for (const v of addrs) {
        // Inside the function, as a sampled IP is (the first frame of a stack).
        const f = s.userFrame(p.pid, BigInt(bias + v + 1));
        if (f.name.startsWith('[')) continue; // a zero-size alias at the end of the text: no function there
        assert.ok(funcs.get(v)!.has(f.symbol ?? f.name), `${real}+0x${v.toString(16)}: ${f.name}, nm: ${[...funcs.get(v)!].join(' ')}`);
        assert.equal(f.module, real);
        named++;
      }
      assert.ok(named >= addrs.length * 0.95, `${named}/${addrs.length} of ${real} named`);
    }
  } finally {
    await p.kill();
  }
});

test('libc debuginfo by build id (libc6-dbg): static functions absent from libc itself are named', async () => {
  const libc = openFile(LIBC);
  const id = readBuildId(ElfFile.open(libc), libc)!;
  const oracleId = execFileSync('sh', ['-c', `readelf -n ${LIBC} | sed -n 's/.*Build ID: //p'`], { encoding: 'utf8' }).trim();
  assert.equal(id, oracleId);
  const debug = `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
  const exported = nmFunctions(LIBC, true);
  const locals = [...nmFunctions(debug, false)].filter(([a]) => !exported.has(a));
  assert.ok(locals.length > 500, `${locals.length} local functions in ${debug}`);
  const table = symbolTableFor(libc);
  assert.ok(table.sources.includes(debug), `sources: ${table.sources.join(', ')}`);
  const p = startSleeper();
  try {
    const regions = await mapsOf(p.pid);
    const base = regions.find((r) => r.path.endsWith('/libc.so.6') && r.offset === 0)!;
    const s = new Symbolizer();
    let named = 0;
    const sample = spread(locals, 200);
    for (const [v, names] of sample) {
      const f = s.userFrame(p.pid, BigInt(base.start + v + 1));
      if (names.has(f.name)) named++;
    }
    assert.ok(named >= sample.length * 0.95, `${named}/${sample.length} static libc functions named`);
  } finally {
    await p.kill();
  }
});

test('a process that exited before symbolization still gets names from libraries on disk', async () => {
  const p = startSleeper();
  const regions = await mapsOf(p.pid);
  const s = new Symbolizer();
  s.notePid(p.pid); // the first sample from it
  const base = regions.find((r) => r.path.endsWith('/libc.so.6') && r.offset === 0)!;
  const funcs = nmFunctions(base.path, true);
  const [v, names] = [...funcs].find(([, n]) => n.has('getpid'))!;
  await p.kill();
  assert.throws(() => readFileSync(`/proc/${p.pid}/maps`));
  const st = s.symbolize(p.pid, [BigInt(base.start + v + 2), BigInt(base.start + v + 4), BigInt(base.start + v + 6)]);
  assert.ok(names.has(st.frames[0].name), st.frames[0].name);
  assert.equal(st.truncated, false);
  // Two frames are likely a cut stack; so is one ending outside every mapping.
  assert.equal(s.symbolize(p.pid, [BigInt(base.start + v + 2), BigInt(base.start + v + 3)]).truncated, true);
  assert.equal(s.symbolize(p.pid, [BigInt(base.start + v + 2), BigInt(base.start + v + 3), 0x10n]).truncated, true);
  assert.match(foldedLine('py;x y', st, 3), /^py_x_y;(__)?getpid;(__)?getpid;(__)?getpid 3$/);
});

// Noted while ld.so (here: dlopen) has yet to map a library, exited before
// the end: the snapshot is taken once more shortly after the note, so the
// library's functions are named (before, `[unknown]`: seen in CI with a
// python preempted in its loader, its clock_nanosleep unnamed).
const LATE_LIBRARY = buildC(String.raw`
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
  usleep(30000);
  void *f = dlsym(dlopen("libm.so.6", RTLD_NOW), "cos");
  printf("%p\n", f);
  fflush(stdout);
  usleep(400000);
  return 0;
}`, 'late-library');

test('a library mapped after the process was noted is named after the process exits', async () => {
  const p = spawn(LATE_LIBRARY, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise((resolve) => p.on('exit', resolve));
  // Noted once it runs the program (its exe is the binary), before its dlopen.
  while (readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0')[0] !== LATE_LIBRARY) await sleep(2);
  const s = new Symbolizer();
  s.notePid(p.pid!);
  assert.doesNotMatch(readFileSync(`/proc/${p.pid}/maps`, 'utf8'), /libm\.so/, 'libm mapped before the note: the check proves nothing');
  await exited;
  const addr = BigInt(out.trim());
  assert.ok(addr > 0n, out);
  const f = s.userFrame(p.pid!, addr);
  assert.match(f.module ?? '', /\/libm\.so\.6$/, JSON.stringify(f, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)));
  assert.match(f.name, /cos/, f.name);
});

/**
 * c++filt's output reduced to what demangle() gives: no template/generic
 * arguments, parameters or crate hashes; a leading qualified self type
 * (Rust's "<core::str>::trim") kept without its brackets.
 */
function simplify(s: string): string {
  const t = s.replace(/\[[0-9a-f]+\]/g, '').replace(/::h[0-9a-f]{16}$/, '');
  let out = '';
  let depth = 0;
  let qself = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c === '<' && i === 0 && !t.startsWith('< ')) { qself = true; continue; }
    if (c === '<') { depth++; if (depth === 1 && out.endsWith('::')) out = out.slice(0, -2); continue; }
    if (c === '>' && depth > 0) { depth--; continue; }
    if (c === '>' && qself) { qself = false; continue; }
    if (depth === 0) out += c;
  }
  const paren = out.indexOf('(');
  return (paren >= 0 ? out.slice(0, paren) : out).trim();
}

function cxxfilt(names: string[]): string[] {
  return execFileSync('c++filt', { input: names.join('\n'), encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n').slice(0, names.length);
}

test('C++ names of libstdc++ demangled as c++filt names them (qualified name, no parameters)', () => {
  const mangled = spread([...nmFunctions('/usr/lib/x86_64-linux-gnu/libstdc++.so.6', true).values()].flatMap((n) => [...n])
    .filter((n) => n.startsWith('_Z') && !n.includes('operator') && !/^_Z[TG]/.test(n)).sort(), 1000); // not special names (vtables, guards, clones)
  const oracle = cxxfilt(mangled);
  let same = 0;
  const wrong: string[] = [];
  mangled.forEach((m, i) => {
    const want = simplify(oracle[i]);
    if (want.includes('operator') || want.includes('{')) { same++; return; } // names with no plain form: not compared
    const got = demangle(m);
    if (got === want) same++;
    else if (wrong.length < 5) wrong.push(`${m}: ${got} vs ${want}`);
  });
  // Malformed input ends too (a demangler loop once ran past the end of "_ZNKSi6gcountEv"): every prefix.
  for (const m of mangled) for (let k = 2; k < m.length; k++) demangle(m.slice(0, k));
  // The compact demangler skips substitutions it cannot expand (S_, S0_...);
  // 85% is what it must keep (measured: see the report).
  assert.ok(same >= mangled.length * 0.85, `${same}/${mangled.length} agree; e.g. ${wrong.join('; ')}`);
});

test('Rust names (legacy and v0 mangling) demangled as c++filt names them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-stacks-'));
  const src = join(dir, 'r.rs');
  writeFileSync(src, 'mod app { #[inline(never)] pub fn parse(n: u64) -> u64 { (0..n).map(|i| i * 3).sum() } }\nfn main() { println!("{}", app::parse(std::env::args().count() as u64)); }\n');
  for (const mangling of ['legacy', 'v0']) {
    const bin = join(dir, mangling);
    execFileSync('rustc', ['-O', '-C', 'strip=none', ...(mangling === 'v0' ? ['-C', 'symbol-mangling-version=v0'] : []), src, '-o', bin], { stdio: 'pipe' });
    const names = [...nmFunctions(bin, false).values()].flatMap((n) => [...n]).filter((n) => n.startsWith(mangling === 'v0' ? '_R' : '_ZN'));
    assert.ok(names.length > (mangling === 'v0' ? 100 : 3), `${names.length} ${mangling} symbols`);
    const oracle = cxxfilt(names);
    let same = 0;
    const wrong: string[] = [];
    names.forEach((m, i) => {
      const want = simplify(oracle[i]);
      // Legacy names keep generic arguments (they are part of the path); v0 ones drop them: compare without.
      const got = simplify(demangle(m) ?? '');
      if (got === want || want.includes('{') || want.includes(' as ')) same++;
      else if (wrong.length < 5) wrong.push(`${m}: ${got} vs ${want}`);
    });
    assert.ok(same >= names.length * 0.9, `${mangling}: ${same}/${names.length} agree; e.g. ${wrong.join('; ')}`);
    assert.ok(names.map((n) => demangle(n)).includes('r::app::parse'), `${mangling}: r::app::parse`);
  }
});
