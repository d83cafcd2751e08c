// The kernel matrix for opensnoop, biolatency, runqlat and offcputime
// (issue 30), run inside the test VM on each kernel (test/vm/matrix.sh --ci
// --files dist/test/vm/guest/ops.check.js). One exact check per tool and
// attach path the running kernel offers; a path it does not offer must fail
// for the stated reason. What a kernel offers is decided here from the kernel
// (its version, tracefs, /proc/kallsyms), not from rbtrace. Oracles are cheap
// enough for qemu TCG: a C program's own opens, /sys/block stat deltas on a
// loop device, /proc/PID/schedstat, a C program's own nanosleeps.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { REPORT_ON_STDOUT, buildC, runRbtrace, settledLeftovers, sleep, startRbtrace, type Finished } from '../../helpers.js';

const KERNEL = release();
const [KMAJ, KMIN] = KERNEL.split('.').map(Number);
const tracefs = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(`${d}/events`));
const hasTracepoint = (cat: string, name: string) => tracefs !== undefined && existsSync(`${tracefs}/events/${cat}/${name}`);
// As in paths.check.ts: arm64 fentry needs ftrace direct calls (6.4+), and
const NO_FENTRY = process.arch === 'arm64' && (KMAJ < 6 || (KMAJ === 6 && KMIN < 4));
const FENTRY_REFUSED = /the kernel refused to attach program \w+ \((fentry|fexit)\): 524\b/;
const TIMEOUT = 180000;

function ok(f: Finished, what: string): void {
  assert.equal(f.code, 0, `${what}: exit ${f.code}\n${f.stderr}`);
}
const jsonLines = (s: string) => s.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

// ---- opensnoop: a program opening known paths through each syscall ----------
// 4 existing files and 3 missing names through openat, 2 + 1 through open()
// where the arch has it, 2 + 1 through openat2 (5.6+, so every kernel here).
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-ops-'));
after(() => rmSync(dir, { recursive: true, force: true }));
for (let i = 0; i < 4; i++) writeFileSync(join(dir, `f${i}`), 'x');
const HAS_OPEN = process.arch === 'x64';
const OPENER = buildC(`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
static void name(char *b, const char *d, const char *what, int i) { snprintf(b, 4096, "%s/%s%d", d, what, i); }
int main(int argc, char **argv) {
  char b[4096];
  for (int i = 0; i < 4; i++) { name(b, argv[1], "f", i); close(openat(AT_FDCWD, b, O_RDONLY)); }
  for (int i = 0; i < 3; i++) { name(b, argv[1], "missing-at", i); openat(AT_FDCWD, b, O_RDONLY); }
#ifdef SYS_open
  for (int i = 0; i < 2; i++) { name(b, argv[1], "f", i); close(syscall(SYS_open, b, O_RDONLY)); }
  name(b, argv[1], "missing-open", 0); syscall(SYS_open, b, O_RDONLY);
#endif
  struct open_how how = { .flags = O_RDONLY };
  for (int i = 2; i < 4; i++) { name(b, argv[1], "f", i); close(syscall(SYS_openat2, AT_FDCWD, b, &how, sizeof(how))); }
  name(b, argv[1], "missing-at2", 0); syscall(SYS_openat2, AT_FDCWD, b, &how, sizeof(how));
  return 0;
}`, 'openervm');

/** [syscall, path, errno or '' when it opened] the program makes, in order. */
const EXPECTED_OPENS: [string, string, string][] = [
  ...[0, 1, 2, 3].map((i) => ['openat', `${dir}/f${i}`, ''] as [string, string, string]),
  ...[0, 1, 2].map((i) => ['openat', `${dir}/missing-at${i}`, 'ENOENT'] as [string, string, string]),
  ...(HAS_OPEN ? [['open', `${dir}/f0`, ''], ['open', `${dir}/f1`, ''], ['open', `${dir}/missing-open0`, 'ENOENT']] as [string, string, string][] : []),
  ['openat2', `${dir}/f2`, ''], ['openat2', `${dir}/f3`, ''], ['openat2', `${dir}/missing-at2${0}`, 'ENOENT'],
];

const OPENSNOOP_PATHS = ['fentry', 'tracepoint', 'raw_tp'];
for (const path of OPENSNOOP_PATHS) {
  // opensnoop's fexit programs read the open entry points' own arguments, not
  // the syscall wrappers' pt_regs: 5.10's BTF quirk does not reach them.
  const unoffered = path === 'fentry' ? (NO_FENTRY ? 'no fentry on arm64 before 6.4' : '')
    : path === 'tracepoint' && !hasTracepoint('syscalls', 'sys_enter_openat') ? 'no syscall tracepoints' : '';
  test(`${KERNEL} opensnoop [${path}]: ${unoffered ? `not offered (${unoffered})` : `the ${EXPECTED_OPENS.length} opens a program makes, in order, with results`}`, async () => {
    const r = await runRbtrace(['opensnoop', '--json', '-v', '--attach', path, ...REPORT_ON_STDOUT, '--', OPENER, dir], { timeoutMs: TIMEOUT });
    if (unoffered) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, FENTRY_REFUSED);
      return;
    }
    ok(r, 'opensnoop');
    assert.match(r.stderr, new RegExp(`attach path: ${path}\\b`));
    const mine = jsonLines(r.stdout).filter((x) => typeof x.path === 'string' && x.path.startsWith(`${dir}/`));
    assert.deepEqual(mine.map((x) => [x.syscall, x.full_path, x.fd >= 0 ? '' : x.errno]), EXPECTED_OPENS);
    assert.deepEqual(await settledLeftovers(['tp_enter_openat', 'tp_exit_openat', 'rt_enter', 'rt_exit', 'fx_openat']), []);
  });
}

// ---- biolatency: direct dd on a loop device of our own ------------------------
// The loop driver is a module in Debian's kernels and the guest has no
// /lib/modules: loaded from the kernel package test/vm/setup.sh unpacked
// (the checkout's test/vm/cache, or the snapshot's cache three levels up).
function loadLoop(): void {
  if (existsSync('/dev/loop-control') || existsSync('/sys/module/loop')) return;
  const sub = join(`kernel-${KERNEL}`, 'lib', 'modules', KERNEL, 'kernel', 'drivers', 'block');
  for (const cache of [resolve('test/vm/cache'), resolve('../../..')]) {
    const d = join(cache, sub);
    const ko = existsSync(d) ? readdirSync(d).find((f) => /^loop\.ko(\.xz|\.zst)?$/.test(f)) : undefined;
    if (ko) {
      // The arm64 guest's own root has no kmod: busybox's insmod there.
      try {
        execFileSync('insmod', [join(d, ko)]);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        execFileSync('busybox', ['insmod', join(d, ko)]);
      }
      return;
    }
  }
  throw new Error(`no loop.ko for ${KERNEL} under test/vm/cache (run test/vm/setup.sh)`);
}

function withLoop<T>(fn: (loop: string) => Promise<T>): Promise<T> {
  loadLoop();
  const image = join(dir, 'disk.img');
  execFileSync('truncate', ['-s', '16M', image]);
  const loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  return fn(loop).finally(() => execFileSync('losetup', ['-d', loop]));
}

/** /sys/block/DEV/stat: completed reads and writes, and their sectors. */
function blockStat(disk: string): number[] {
  const f = readFileSync(`/sys/block/${disk}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return [f[0], f[2], f[4], f[6]];
}

for (const path of ['tp_btf', 'raw_tp']) {
  test(`${KERNEL} biolatency [${path}]: per-op I/O counts and bytes equal /sys/block stat's for direct dd`, async () => {
    await withLoop(async (loop) => {
      const disk = basename(loop);
      const r = startRbtrace(['biolatency', '-v', '--json', '-F', '-D', '--disk', disk, '--attach', path]);
      await r.ready(TIMEOUT);
      const before = blockStat(disk);
      execFileSync('dd', ['if=/dev/zero', `of=${loop}`, 'bs=4k', 'count=40', 'oflag=direct', 'status=none']);
      execFileSync('dd', [`if=${loop}`, 'of=/dev/null', 'bs=8k', 'count=25', 'skip=7', 'iflag=direct', 'status=none']);
      await sleep(500);
      const now = blockStat(disk);
      r.signal('SIGINT');
      const f = await r.finished;
      ok(f, 'biolatency');
      assert.match(f.stderr, new RegExp(`attach path: ${path}\\b`));
      const rec = jsonLines(f.stdout).at(-1) as { hists: { disk: string; op: string; count: number; bytes: number }[] };
      const by = new Map(rec.hists.map((h) => [h.op, h]));
      // Exact: the device is ours, and stat counts a request at the same
      // completion the tracepoint reports.
      assert.deepEqual([by.get('read')?.count, by.get('read')?.bytes, by.get('write')?.count, by.get('write')?.bytes],
        [now[0] - before[0], (now[1] - before[1]) * 512, now[2] - before[2], (now[3] - before[3]) * 512]);
      assert.equal(by.get('write')?.bytes, 40 * 4096);
      assert.equal(by.get('read')?.bytes, 25 * 8192);
      for (const h of rec.hists) assert.equal(h.disk, disk);
    });
  });
}

// ---- runqlat: two busy loops sharing one CPU, against schedstat ---------------
// Not offered where the kernel keeps no schedstat would be a skip here, not
// a path question: every Debian kernel has CONFIG_SCHED_INFO.
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});
function schedstat(pid: number): { waitNs: number; runs: number } {
  const [, wait, runs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
  return { waitNs: wait, runs };
}
for (const path of ['tp_btf', 'raw_tp']) {
  test(`${KERNEL} runqlat [${path}]: two loops on one CPU wait as often and as long as schedstat says`, async () => {
    const pids: number[] = [];
    for (let i = 0; i < 2; i++) {
      const c = spawn('taskset', ['-c', '0', 'perl', '-e', '1 while 1'], { stdio: 'ignore' });
      children.push(c);
      pids.push(c.pid!);
    }
    await sleep(3000); // taskset has exec'd perl (slow under TCG)
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    const r = startRbtrace(['runqlat', '-v', '--json', '-P', '--attach', path]);
    await r.ready(TIMEOUT);
    const before = pids.map(schedstat);
    for (const pid of pids) process.kill(pid, 'SIGCONT');
    await sleep(3000);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    await sleep(500);
    const afterS = pids.map(schedstat);
    r.signal('SIGINT');
    const f = await r.finished;
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    ok(f, 'runqlat');
    assert.match(f.stderr, new RegExp(`attach path: ${path}\\b`));
    const rec = jsonLines(f.stdout).at(-1) as { hists: { pid: number; count: number; total_ns: number; max_ns: number }[] };
    pids.forEach((pid, i) => {
      const row = rec.hists.find((h) => h.pid === pid);
      assert.ok(row, `pid ${pid} has a histogram`);
      const runs = afterS[i].runs - before[i].runs;
      const wait = afterS[i].waitNs - before[i].waitNs;
      // Counts: both sides count the same waits; one wait of slack per
      // process, as test/e2e/runqlat.test.ts states (on the 6.18 host one
      // is missed now and then: 89 vs 90, cause not found yet).
      assert.ok(Math.abs(row.count - runs) <= 1, `pid ${pid}: ${row.count} waits vs schedstat ${runs}`);
      // Times: schedstat reads the run queue's clock a little before the
      // tracepoint's ktime at each end; 10 us a wait allowed (1.5 measured on
      // the host, where test/e2e/runqlat.test.ts holds to it), plus the
      // longest wait for the one of slack. Under qemu TCG the instructions
      // between those two clock reads take far longer: 6.12's guest was 12 ms
      // (0.8 %) over on 1.5 s of waits, so here 2 % of the sum as well.
      const allowed = Math.max(10_000 * runs, 0.02 * wait) + row.max_ns;
      assert.ok(Math.abs(row.total_ns - wait) <= allowed, `pid ${pid}: ${row.total_ns} ns vs schedstat ${wait} ns (allowed ${allowed})`);
      assert.ok(runs > 10, `pid ${pid}: ${runs} runs`);
    });
  });
}

// ---- offcputime: a program sleeping 10 x 100 ms ---------------------------------
// Its user stack: libc's clock_nanosleep, then main: libc keeps no frame
// pointer, so the walk goes from libc to the return address in nap()'s
// frame, into main (nap itself is not seen).
const SLEEPER = buildC(`
#include <time.h>
__attribute__((noinline)) void nap(void) { struct timespec t = { 0, 100000000 }; nanosleep(&t, 0); __asm__ volatile(""); }
int main(void) { for (int i = 0; i < 10; i++) nap(); return 0; }`, 'sleepervm', ['-fno-omit-frame-pointer']);
for (const path of ['tp_btf', 'raw_tp']) {
  test(`${KERNEL} offcputime [${path}]: 10 sleeps of 100 ms, one stack from main() through do_nanosleep, >= 1 s`, async (t) => {
    type Rec = { stacks: { count: number; total_ns: number; frames: { name: string; kernel: boolean }[] }[]; unpaired: number; stack_errors: number; dropped: number };
    const once = async () => {
      const r = await runRbtrace(['offcputime', '--json', '-v', '--attach', path, ...REPORT_ON_STDOUT, '--', SLEEPER], { timeoutMs: TIMEOUT });
      ok(r, 'offcputime');
      assert.match(r.stderr, new RegExp(`attach path: ${path}\\b`));
      return { r, rec: jsonLines(r.stdout).at(-1) as Rec };
    };
    // A run that saw no block at all is run once more, said in the TAP: seen
    // twice in the matrix (6.12 and arm64 6.1, raw_tp both times; never on
    // the host), cause not found. One such run is a known open bug (the
    // closing note of 2026-12-07), two in a row fail the check.
    let { r, rec } = await once();
    if (rec.stacks.length === 0) {
      t.diagnostic(`offcputime [${path}] saw no block (unpaired ${rec.unpaired}, stack_errors ${rec.stack_errors}, dropped ${rec.dropped}); run once more. stderr: ${r.stderr.replace(/\n/g, ' | ')}`);
      ({ r, rec } = await once());
    }
    const sleeps = rec.stacks.filter((s) => s.frames.some((fr) => fr.kernel && fr.name === 'do_nanosleep'));
    // On failure, every stack and rbtrace's -v lines: which part went missing.
    assert.equal(sleeps.length, 1, `${JSON.stringify(rec.stacks.map((s) => [s.count, s.frames.map((fr) => fr.name)]))}\n${r.stderr}`);
    assert.equal(sleeps[0].count, 10);
    // main, through nap()'s frame pointer. libc's own frame may stay
    // unnamed: the command has exited when its mappings are read (as the
    // man page says), and 5.10's guest showed it as [unknown].
    assert.ok(sleeps[0].frames.some((fr) => !fr.kernel && fr.name === 'main'), JSON.stringify(sleeps[0].frames));
    // Each sleep blocks its 100 ms at least (the timer is armed before the
    // switch); under TCG a wakeup may wait long for the CPU: 5 s at most.
    assert.ok(sleeps[0].total_ns >= 10 * 100e6 - 1e6 && sleeps[0].total_ns < 5e9, `${sleeps[0].total_ns} ns`);
    assert.deepEqual(await settledLeftovers(['tb_switch', 'rt_switch']), []);
  });
}
