// Both architectures' pieces, checked on any build machine. The
// architecture table (src/core/bpf/arch.ts), the syscall names per table, the
// objects of both architectures (compiled for the right one: the registers
// bpf_tracing.h reads are arm64's user_pt_regs or x86's pt_regs), and the
// package (npm pack) carrying both plus koffi's native module for both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { archInfo, bpfArchDir, hostArch, SUPPORTED_ARCHES } from '../../src/core/bpf/arch.js';
import { syscallName, syscallNumber } from '../../src/core/linux/names.js';
import { pathsFor } from '../../src/tools/syscount/probe.js';
import { BpfObject, bpfObjectDir } from '../../src/core/bpf/object.js';
import { ROOT } from '../helpers.js';

const X64 = archInfo('x64')!;
const ARM64 = archInfo('arm64')!;
const OBJECTS = readdirSync(join(ROOT, 'src/bpf')).filter((f) => f.endsWith('.bpf.c')).map((f) => f.replace(/\.c$/, '.o'));

test('the architecture table: x64 and arm64, nothing else', () => {
  assert.deepEqual(SUPPORTED_ARCHES.map((a) => a.node), ['x64', 'arm64']);
  assert.equal(X64.bpf, 'x86');
  assert.equal(ARM64.bpf, 'arm64');
  assert.equal(X64.syscallPrefix, '__x64_sys_');
  assert.equal(ARM64.syscallPrefix, '__arm64_sys_');
  assert.equal(X64.syscallDispatcher.func, 'x64_sys_call');
  assert.equal(ARM64.syscallDispatcher.func, 'invoke_syscall');
  assert.equal(archInfo('s390x'), undefined);
  const r = bpfArchDir('riscv64');
  assert.ok('error' in r && /no BPF objects for this architecture \(riscv64\): rbtrace is built for x64 and arm64/.test(r.error));
  assert.deepEqual(bpfArchDir('arm64'), { dir: 'arm64' });
  assert.equal(hostArch(), archInfo(process.arch));
});

test('syscall numbers differ per table and each name maps back', () => {
  // The same call, two numbers: x86-64's own table, arm64's generic one.
  for (const [name, x86, arm] of [['openat', 257, 56], ['execve', 59, 221], ['getppid', 110, 173], ['chdir', 80, 49], ['read', 0, 63]] as const) {
    assert.equal(syscallNumber(name, X64.syscallTable), x86, name);
    assert.equal(syscallNumber(name, ARM64.syscallTable), arm, name);
    assert.equal(syscallName(arm, ARM64.syscallTable), name);
  }
});

test('syscount fentry: x64_sys_call with fe_* on x64, invoke_syscall with fa_* on arm64', () => {
  for (const latency of [false, true]) {
    const x = pathsFor(latency, true, X64)[0];
    const a = pathsFor(latency, true, ARM64)[0];
    assert.equal(x.name, 'fentry');
    assert.deepEqual(x.programs, latency ? ['fe_enter', 'fe_exit'] : ['fe_count']);
    assert.deepEqual(a.programs, latency ? ['fa_enter', 'fa_exit'] : ['fa_count']);
    for (const p of x.programs) assert.equal(x.attachTargets?.[p], 'x64_sys_call');
    for (const p of a.programs) assert.equal(a.attachTargets?.[p], 'invoke_syscall');
    // The tracepoint paths are the same on both.
    assert.deepEqual(pathsFor(latency, true, X64).slice(1), pathsFor(latency, true, ARM64).slice(1));
  }
});

/** Program names of an object (libbpf opens it: no kernel involved). */
function programs(path: string): string[] {
  const obj = BpfObject.open(path);
  try {
    return obj.programs().map((p) => p.name);
  } finally {
    obj.close();
  }
}

test('every object is built for both architectures, with the same programs (one typed skeleton for both)', () => {
  assert.ok(OBJECTS.length >= 7);
  for (const o of OBJECTS) {
    const x = programs(join(ROOT, 'build/bpf/x86', o));
    const a = programs(join(ROOT, 'build/bpf/arm64', o));
    // syscount's arm64 dispatcher programs (fa_*) exist on x86 as never-loaded stubs, and fe_* on arm64.
    assert.deepEqual(a, x, o);
  }
  // This machine's objects are the ones rbtrace opens.
  assert.equal(bpfObjectDir(), join(ROOT, 'build/bpf', hostArch().bpf));
});

test('each architecture\'s objects read that architecture\'s registers', () => {
  // bpf_tracing.h: PT_REGS_PARM1_CORE_SYSCALL etc. relocate against
  // struct user_pt_regs (regs[]) on arm64, struct pt_regs (di, si) on x86.
  const dump = (arch: string) => execFileSync('bpftool', ['btf', 'dump', 'file', join(ROOT, 'build/bpf', arch, 'strlat.bpf.o')], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const a = dump('arm64');
  const x = dump('x86');
  assert.match(a, /STRUCT 'user_pt_regs'/);
  assert.doesNotMatch(a, /'di' type_id/);
  assert.match(x, /STRUCT 'pt_regs'[^\n]*\n(\s+'\w+'[^\n]*\n)*\s+'di' type_id/);
  assert.doesNotMatch(x, /STRUCT 'user_pt_regs'/);
});

test('npm pack ships both architectures\' objects; koffi carries linux x64 and arm64 builds', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
  for (const arch of ['x86', 'arm64']) {
    for (const o of OBJECTS) assert.ok(files.has(`build/bpf/${arch}/${o}`), `build/bpf/${arch}/${o} in the package`);
  }
  assert.ok(![...files].some((f) => /^build\/bpf\/[^/]+\.bpf\.o$/.test(f)), 'no architecture-less object left');
  // koffi is a dependency (installed from npm with the package), and one
  // package holds every platform's prebuilt module: check the two we need.
  const koffiDir = join(ROOT, 'node_modules/koffi/build/koffi');
  for (const [dir, machine] of [['linux_x64', 62], ['linux_arm64', 183]] as const) {
    const f = join(koffiDir, dir, 'koffi.node');
    assert.ok(existsSync(f), f);
    assert.equal(readFileSync(f).readUInt16LE(18), machine, `${f}: ELF e_machine`);
  }
});
