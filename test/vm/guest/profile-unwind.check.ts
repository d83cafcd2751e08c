// profile --unwind dwarf in the kernel matrix (issue 28): its one attach
// path (perf_event: rbstack_sample, which copies the user stack a page at a
// time and walks Ruby's control frames with bounded loops) loads and runs on
// every kernel of the matrix. The user registers come from bpf_task_pt_regs
// on 5.15+ and from the top of the task's kernel stack before (5.10): both
// are checked with samples taken in user mode (a gcc -O2
// -fomit-frame-pointer program's stacks reach main through .eh_frame) and in
// kernel mode (its read() loop: the user half of each kernel stack reaches
// main too, so the saved registers are the right ones), and in a ruby the
// Ruby method under the sample is named. The same checks on x86-64 and
// arm64 (aarch64 registers: src/core/unwind/arch.ts; the program below is
// built with pointer authentication there), plus strlat's copies on arm64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORT_ON_STDOUT, buildC, runRbtrace, type Finished } from '../../helpers.js';

const KERNEL = release();
// Each C program says "ready" once in main, then works until killed (10 min at
// most; with a 60 s cap one 5.10 run on a loaded host took 63 s and sampled
// nothing: under TCG rbtrace's start can outlast such a program). hot()'s argument varies: with a constant one gcc -O2 computes the
// pure call once.
const READY = `
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static struct timespec t0;
static int done(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec - t0.tv_sec >= 600; }
static void ready(void) { clock_gettime(CLOCK_MONOTONIC, &t0); puts("ready"); fflush(stdout); }
`;
// arm64: hot() is a leaf (its return address stays in x30: the record's lr);
// with -mbranch-protection=standard (pac-ret: Debian 13's default, not 12's,
// whose libc and libruby have no paciasp) work() and main() sign their
// return addresses, so reaching main and past it needs the PAC stripped.
const ARM64 = process.arch === 'arm64';
const ARM64_PAC = ARM64 ? ['-mbranch-protection=standard'] : [];
const NOFP = buildC(`${READY}
__attribute__((noinline)) double hot(long n) { double s = 0; for (long i = 0; i < n; i++) s += (double)i / (i + 1); return s; }
__attribute__((noinline)) double work(long k) { return hot(200000 + (k & 7)) * 0.5 + 1; }
int main(void) { double t = 0; ready(); for (long k = 0; !done(); k++) t += work(k); return t < 0; }
`, 'nofpvm', ['-O2', '-fomit-frame-pointer', ...ARM64_PAC]);
// read(2) of /dev/zero, 1 MiB at a time: most of its time is the kernel's clearing of the buffer.
const NOFP_SYS = buildC(`${READY}
static char buf[1 << 20];
__attribute__((noinline)) long sysloop(int fd) { long t = 0; while (!done()) t += read(fd, buf, sizeof buf); return t; }
int main(void) { ready(); return sysloop(open("/dev/zero", O_RDONLY)) < 0; }
`, 'nofpsysvm', ['-O2', '-fomit-frame-pointer', ...ARM64_PAC]);
interface JsonStack { count: number; truncated: boolean; frames: { name: string; kernel: boolean }[] }
/** The run's report (the last NDJSON line with stacks); fails with what rbtrace printed when there is none. */
function lastRecord(r: Finished): { samples: number; stacks: JsonStack[] } {
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{') && l.includes('"stacks"')).pop();
  assert.ok(line, `no report; stdout: ${r.stdout.slice(-600)} stderr: ${r.stderr.slice(-600)}`);
  return JSON.parse(line);
}

const count = (stacks: JsonStack[]): number => stacks.reduce((a, s) => a + s.count, 0);
const reachesMain = (s: JsonStack): boolean => !s.truncated && s.frames.some((f) => !f.kernel && f.name === 'main');
const show = (stacks: JsonStack[]): string => stacks.slice(0, 3).map((s) => `${s.count}x ${s.frames.map((f) => f.name).join(';')}`).join(' | ');

// Profiled with -p once main runs: these checks are about what the kernel
// gives. The `-- CMD` check after them is about user space: under TCG the
// dynamic loader takes seconds, so the first sample's mappings have no libc,
// and until they are read again samples were cut at __libc_start_call_main
// (src/core/stacks/symbolizer.ts, REREAD_MS).
async function profileRunning(cmd: string[], args: string[], hz = '99'): Promise<Finished> {
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`${cmd.join(' ')} exited (${code}) before main`)));
    });
    return await runRbtrace(['profile', '--unwind', 'dwarf', '-F', hz, '--json', '-d', '3', '-p', String(child.pid), ...args], { timeoutMs: 120000 });
  } finally {
    child.kill('SIGKILL');
  }
}

test(`${KERNEL} profile --unwind dwarf [perf_event]: a no-frame-pointer program's samples in hot() reach main`, async (t) => {
  const r = await profileRunning([NOFP], ['-v']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /attach path: perf_event\b/);
  const p = lastRecord(r);
  const hot = p.stacks.filter((s) => s.frames[0]?.name === 'hot');
  const n = count(hot);
  const toMain = count(hot.filter(reachesMain));
  t.diagnostic(`${process.arch}: ${toMain} of ${n} samples in hot() reach main (${p.samples} samples)`);
  if (ARM64_PAC.length) {
    // The return addresses really are signed (else the walk past work() would prove nothing of PAC).
    const pac = execFileSync('objdump', ['-d', NOFP], { encoding: 'utf8' }).split('\n').filter((l) => /\bpaciasp\b/.test(l)).length;
    t.diagnostic(`arm64: ${pac} paciasp in the program`);
    assert.ok(pac >= 2, `${pac} paciasp in ${NOFP}: not built with pac-ret`);
  }
  // 3 s at 99 Hz: up to ~300 samples, most of them in hot().
  assert.ok(n >= 20, `only ${n} of ${p.samples} samples in hot(): ${show(p.stacks)}`);
  assert.ok(toMain / n >= 0.95, `${toMain} of ${n} samples in hot() reach main; others: ${show(hot.filter((s) => !reachesMain(s)))}`);
});

test(`${KERNEL} profile --unwind dwarf -- CMD: sampled from its dynamic loader on, its samples in hot() still reach main`, async (t) => {
  const r = await runRbtrace(['profile', '--unwind', 'dwarf', '-F', '99', '--json', ...REPORT_ON_STDOUT, '-d', '4', '--', NOFP], { timeoutMs: 120000 });
  // -d ends the run by terminating the command: rbtrace exits with its status (128 + SIGTERM).
  assert.equal(r.code, 143, r.stderr);
  const p = lastRecord(r);
  const hot = p.stacks.filter((s) => s.frames[0]?.name === 'hot');
  const n = count(hot);
  const toMain = count(hot.filter(reachesMain));
  t.diagnostic(`${process.arch}: ${toMain} of ${n} samples in hot() reach main`);
  assert.ok(n >= 20, `only ${n} of ${p.samples} samples in hot(): ${show(p.stacks)}`);
  assert.ok(toMain / n >= 0.95, `${toMain} of ${n} samples in hot() reach main; others: ${show(hot.filter((s) => !reachesMain(s)))}`);
});

test(`${KERNEL} profile --unwind dwarf [perf_event]: samples in the kernel (read of /dev/zero) have user stacks through sysloop to main`, async (t) => {
  const r = await profileRunning([NOFP_SYS], []);
  assert.equal(r.code, 0, r.stderr);
  // Samples that hit the kernel: the user registers are the ones saved at its entry.
  const inKernel = lastRecord(r).stacks.filter((s) => s.frames[0]?.kernel);
  const n = count(inKernel);
  const through = count(inKernel.filter((s) => reachesMain(s) && s.frames.some((f) => !f.kernel && f.name === 'sysloop')));
  t.diagnostic(`${process.arch}: ${through} of ${n} kernel samples reach main through sysloop`);
  // Every syscall of the program once it is ready is sysloop's (read, clock_gettime).
  assert.ok(n >= 20, `only ${n} samples in the kernel`);
  assert.ok(through / n >= 0.95, `${through} of ${n} kernel samples have a user stack sysloop -> main; others: ${show(inKernel.filter((s) => !reachesMain(s)))}`);
});

test(`${KERNEL} profile --unwind dwarf [perf_event]: Ruby frames (the control-frame walk and method entries in BPF)`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-vm-rb-'));
  const script = join(dir, 'spin.rb');
  // Profiled once its loop runs (-p), like the C programs: from `-- ruby`, under TCG
  // ruby's start (rubygems) filled the ring of stack copies faster than rbtrace's
  // node unwound them (~16 ms a sample on arm64), and a loaded host's x86 guest
  // dropped every sample of a 3 s loop that way. 49 Hz on arm64 keeps up there.
  writeFileSync(script, `class Spin\n  def go\n    i = 0\n    i += 1 while i < 100_000\n  end\nend\n$stdout.puts "ready"\n$stdout.flush\nt = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 600\nSpin.new.go while Process.clock_gettime(Process::CLOCK_MONOTONIC) < t\n`);
  const r = await profileRunning(['ruby', script], ['-v'], ARM64 ? '49' : '99');
  assert.equal(r.code, 0, r.stderr);
  const p = lastRecord(r);
  const names = p.stacks.flatMap((s) => s.frames.map((f) => f.name));
  const go = count(p.stacks.filter((s) => s.frames.some((f) => f.name === `Spin#go (${script}:4)`)));
  t.diagnostic(`${process.arch}: ${go} of ${p.samples} samples under Spin#go at line 4; -v: ${r.stderr.split('\n').filter((l) => /ruby|unwind/i.test(l)).join(' / ').slice(0, 600)}`);
  assert.ok(names.some((f) => f === `Spin#go (${script}:4)`), `no Spin#go frame at line 4: ${[...new Set(names)].slice(0, 12).join(', ')}`);
  // Every sample of the running loop is under Spin#go (its while line, or the
  // Integer#+ and #< it calls from there), but the odd one in ruby's GC or
  // timer thread: at least 80 %.
  assert.ok(go >= 0.8 * p.samples, `${go} of ${p.samples} samples under Spin#go: ${show(p.stacks)}`);
});

// The same record shape in strlat (src/bpf/strlat.bpf.c, sent at the
// uretprobe: x30 then holds the uretprobe trampoline, never used, as the
// caller's row restores its own return address): Debian's gzip (-O2, no
// frame pointers) through libc's read/write reaches main. arm64 only: the
// x86-64 host runs test/e2e/strlat-unwind.test.ts, with strace's counts.
if (ARM64) {
  test(`${KERNEL} strlat --stack --unwind dwarf [uprobe] on arm64: gzip's reads and writes reach main`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'rbtrace-vm-gz-'));
    const file = join(dir, 'in.bin');
    writeFileSync(file, randomBytes(4 << 20));
    const r = await runRbtrace(['strlat', ...REPORT_ON_STDOUT, '--json', '--stack', '--unwind', 'dwarf', '--func', 'c:read,write', '--', 'gzip', '-kf', '-1', file], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    for (const l of r.stdout.split('\n').filter((x) => x.startsWith('{'))) {
      const rep = JSON.parse(l) as { function: string; count: number; stacks?: { count: number; truncated: boolean; stack: { name?: string; module?: string }[] }[] };
      const stacks = rep.stacks ?? [];
      const all = stacks.reduce((n, s) => n + s.count, 0);
      // gzip is stripped (no `main`) and arm64's libc has no .symtab (its __libc_start_call_main
      // is an unnamed [libc.so.6] frame): gzip frames, then libc's exported __libc_start_main,
      // and the walk ended at _start.
      const toMain = stacks.filter((s) => {
        const i = s.stack.findIndex((f) => f.name === '__libc_start_main');
        return !s.truncated && i > 0 && s.stack.slice(0, i).some((f) => /gzip$/.test(f.module ?? ''));
      }).reduce((n, s) => n + s.count, 0);
      t.diagnostic(`arm64 strlat ${rep.function}: ${rep.count} calls, ${toMain} of ${all} in the stack rows reach main through gzip`);
      assert.ok(rep.count >= 10 && all === rep.count, `${rep.function}: ${rep.count} calls, ${all} in the rows`);
      assert.ok(toMain >= 0.95 * all, `${rep.function}: ${toMain} of ${all} reach main: ${JSON.stringify(stacks).slice(0, 800)}`);
    }
  });
}
