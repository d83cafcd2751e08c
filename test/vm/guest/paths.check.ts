// The kernel matrix's CI subset (issue 13), run inside the test VM on each
// kernel (test/vm/matrix.sh --kernels; not a *.test.ts: it means nothing on
// the host, whose kernel has neither kprobes nor fentry). One exact
// end-to-end check per tool and attach path the tool offers on the running
// kernel; uprobe/USDT tools once. Which paths a kernel offers is decided here
// from the kernel itself (kallsyms, tracefs), not from rbtrace, so a path
// rbtrace wrongly gives up fails a test.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { REPORT_ON_STDOUT, buildC, runRbtrace, startRbtrace, settledLeftovers, sleep, type Finished } from '../../helpers.js';
import { synqueueBacklogCheck } from '../../checks/synqueue-backlog.js';

const KERNEL = release();
const kallsyms = readFileSync('/proc/kallsyms', 'utf8');
const hasSymbol = (name: string) => new RegExp(`^\\S+ [Tt] ${name}$`, 'm').test(kallsyms);
const tracefs = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(`${d}/events`));
const hasTracepoint = (cat: string, name: string) => tracefs !== undefined && existsSync(`${tracefs}/events/${cat}/${name}`);
// arm64 (issue 17): fentry on kernel functions needs ftrace direct calls,
// arm64's since 6.4; Debian's 6.1 arm64 kernel refuses every such attach
// (ENOTSUPP, 524), so there the fentry paths must fail for that reason.
const [KMAJ, KMIN] = KERNEL.split('.').map(Number);
const NO_FENTRY = process.arch === 'arm64' && (KMAJ < 6 || (KMAJ === 6 && KMIN < 4));
const FENTRY_REFUSED = /the kernel refused to attach program \w+ \(fentry\): 524\b/;

// Which check was running when the test process died (a crash leaves no TAP
// line for it): each check's start and end, with the guest's uptime to match
// the kernel log's timestamps, in RBTRACE_VM_CHECKLOG (matrix-guest.sh sets it).
const CHECKLOG = process.env.RBTRACE_VM_CHECKLOG;
const logCheck = (what: string, name: string) => {
  if (CHECKLOG) appendFileSync(CHECKLOG, `${readFileSync('/proc/uptime', 'utf8').split(' ')[0]} ${what} ${name}\n`);
};
beforeEach((t) => logCheck('start', t.name));
afterEach((t) => logCheck('end', t.name));

function ok(f: Finished, what: string): void {
  assert.equal(f.code, 0, `${what}: exit ${f.code}\n${f.stderr}`);
}
const jsonLines = (s: string) => s.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

// ---- execsnoop: every path records the exact argv -----------------------------
const ARGS = ['two words', '', "it's", 'new\nline', 'x'.repeat(40)];
// 5.10's BTF gives __x64_sys_execveat's argument as a pointer to a forward
// declaration of pt_regs, so the verifier lets no fentry program read it:
// there the fentry path is not offered, and must fail for that reason.
const FENTRY_EXECVEAT_FWD = /^5\.10\./.test(KERNEL);
for (const path of ['sched', 'fentry', 'kprobe', 'tracepoint']) {
  const unoffered = path === 'fentry' && (FENTRY_EXECVEAT_FWD || NO_FENTRY);
  test(`${KERNEL} execsnoop [${path}]: ${unoffered ? `not offered (${NO_FENTRY ? 'no fentry on arm64 before 6.4' : 'execveat\'s BTF'})` : 'one exec, its exact argv'}`, async () => {
    const r = await runRbtrace(['execsnoop', '--json', '-v', '--attach', path, ...REPORT_ON_STDOUT, '--', '/bin/true', ...ARGS], { timeoutMs: 120000 });
    if (unoffered) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, NO_FENTRY ? FENTRY_REFUSED : /func '__x64_sys_execveat' arg0 type FWD is not a struct/);
      assert.equal(r.stdout, '');
      return;
    }
    ok(r, 'execsnoop');
    assert.match(r.stderr, new RegExp(`attach path: ${path}\\b`));
    const recs = jsonLines(r.stdout);
    assert.equal(recs.length, 1, r.stdout);
    assert.deepEqual(recs[0].args, ['/bin/true', ...ARGS]);
    assert.equal(recs[0].ret, 0);
  });
}

// ---- syscount: exact counts, in count mode and with latency -------------------
const SCPROG = buildC(`
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  for (int i = 0; i < atoi(argv[1]); i++) syscall(SYS_getppid);
  for (int i = 0; i < atoi(argv[2]); i++) syscall(SYS_chdir, "/nonexistent-rbtrace-vm");
  return 0;
}`, 'scvm');
// fentry needs x64_sys_call (6.9+; arm64: invoke_syscall, where fentry
// attaches at all); the tracepoint-family paths are everywhere.
const DISPATCHER = process.arch === 'arm64' ? 'invoke_syscall' : 'x64_sys_call';
const SYSCOUNT_PATHS = [...(hasSymbol(DISPATCHER) && !NO_FENTRY ? ['fentry'] : []), 'tp_btf', 'raw_tp'];
test(`${KERNEL} syscount offers exactly ${SYSCOUNT_PATHS.join(', ')}`, async () => {
  const r = await runRbtrace(['syscount', '-v', '-d', '1']);
  ok(r, 'syscount');
  assert.match(r.stderr, new RegExp(`attach path: ${SYSCOUNT_PATHS[0]}\\b`));
});
for (const path of SYSCOUNT_PATHS) {
  for (const mode of ['count', 'latency'] as const) {
    test(`${KERNEL} syscount [${path}] ${mode}: 321 getppid, 45 failing chdir`, async () => {
      const r = await runRbtrace(['syscount', '--json', '--all', '-v', '--attach', path, ...(mode === 'count' ? ['--no-strace'] : ['--strace']),
        ...REPORT_ON_STDOUT, '--', SCPROG, '321', '45'], { timeoutMs: 120000 });
      ok(r, 'syscount');
      const [rep] = jsonLines(r.stdout);
      const by = new Map<string, { count: number; errors: number; total_ns?: number }>(rep.syscalls.map((s: { name: string }) => [s.name, s]));
      assert.equal(by.get('getppid')?.count, 321);
      assert.equal(by.get('getppid')?.errors, 0);
      assert.equal(by.get('chdir')?.count, 45);
      assert.equal(by.get('chdir')?.errors, 45);
      if (mode === 'latency') assert.ok((by.get('getppid')?.total_ns ?? 0) > 0, 'time measured');
      else assert.equal(by.get('getppid')?.total_ns, undefined);
      // -L's start store: task storage from 5.11, else a hash (said with -v)
      const taskStorage = !/no task storage/.test(r.stderr);
      if (mode === 'latency') assert.equal(taskStorage, !/^5\.10\./.test(KERNEL), r.stderr);
    });
  }
}

// ---- synqueue: a backlog-4 listener never accepting, 10 connections ----------
// (test/checks/synqueue-backlog.ts); then the best path once more with every
// optional program refused (RBTRACE_REFUSE): exact all the same.
const DATA_READY = hasTracepoint('sock', 'sk_data_ready');
const SYNQUEUE_OPTIONAL = ['dump_listener_files', 'dump_ownerless', 'tpb_data_ready', 'tp_data_ready'];
for (const path of ['fentry', 'kprobe', 'tp_btf', 'tracepoint']) {
  if (path === 'fentry' && NO_FENTRY) {
    test(`${KERNEL} synqueue [fentry]: not offered (no fentry on arm64 before 6.4)`, async () => {
      const r = await runRbtrace(['synqueue', '--json', '--attach', 'fentry', '-d', '1'], { timeoutMs: 120000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, FENTRY_REFUSED);
    });
    continue;
  }
  const seesEnqueues = path === 'fentry' || path === 'kprobe' || DATA_READY;
  test(`${KERNEL} synqueue [${path}]: backlog 4, 10 connects: the queue holds 5${seesEnqueues ? ', 5 enqueued' : ''}`, async () => {
    await synqueueBacklogCheck({ path, seesEnqueues, timeoutMs: 120000 });
  });
}
const BEST_SYNQUEUE = NO_FENTRY ? 'kprobe' : 'fentry';
test(`${KERNEL} synqueue [${BEST_SYNQUEUE}] with every optional program refused: exact, and says what it runs without`, async () => {
  const f = await synqueueBacklogCheck({ path: BEST_SYNQUEUE, seesEnqueues: true, timeoutMs: 120000, env: { RBTRACE_REFUSE: SYNQUEUE_OPTIONAL.join(',') } });
  assert.match(f.stderr, /optional program dump_listener_files left out: iter\/task_file refused by RBTRACE_REFUSE: EPERM/);
  assert.match(f.stderr, /optional program dump_ownerless left out: iter\/bpf_map_elem refused by RBTRACE_REFUSE: EPERM/);
});

// ---- uprobe tools, once per kernel -------------------------------------------
const WORK = buildC(`
#include <stdlib.h>
volatile long sink;
__attribute__((noinline)) long work(const char *p, long len) { sink += len; return len; }
int main(int argc, char **argv) { for (int i = 0; i < atoi(argv[1]); i++) work(0, i % 64); return 0; }`, 'workvm');

test(`${KERNEL} strlat [uprobe]: a function called exactly 777 times`, async () => {
  const r = await runRbtrace(['strlat', '--json', '--lib', WORK, '--func', 'work', ...REPORT_ON_STDOUT, '--', WORK, '777'], { timeoutMs: 120000 });
  ok(r, 'strlat');
  const rep = jsonLines(r.stdout).at(-1);
  assert.equal(rep.count, 777);
  assert.equal(rep.unmatched, 0);
  assert.deepEqual(await settledLeftovers(['strlat_entry', 'strlat_return']), []);
});

// strlat --kfunc (issue 16): chdir's kernel entry point, reached only by
// that syscall, called exactly 45 times by the command, on each kernel path.
// (Not getppid's: SYSCALL_DEFINE0 wrappers have no BTF, so no fentry.)
const KFUNC = `${process.arch === 'arm64' ? '__arm64_sys_' : '__x64_sys_'}chdir`;
/** Kernel frames a syscall's stack goes through. */
const SYSCALL_ENTRY = process.arch === 'arm64' ? /^(invoke_syscall|el0_svc_common|do_el0_svc|el0_svc)/ : /^do_syscall_64$/;
for (const path of ['fentry', 'kprobe']) {
  if (path === 'fentry' && NO_FENTRY) {
    test(`${KERNEL} strlat --kfunc [fentry]: not offered (no fentry on arm64 before 6.4)`, async () => {
      const r = await runRbtrace(['strlat', '--json', '--attach', 'fentry', '--kfunc', KFUNC, ...REPORT_ON_STDOUT, '--', SCPROG, '321', '45'], { timeoutMs: 120000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, FENTRY_REFUSED);
    });
    continue;
  }
  test(`${KERNEL} strlat --kfunc [${path}]: ${KFUNC} called exactly 45 times`, async () => {
    const r = await runRbtrace(['strlat', '--json', '-v', '--stack', '--attach', path, '--kfunc', KFUNC, ...REPORT_ON_STDOUT, '--', SCPROG, '321', '45'], { timeoutMs: 120000 });
    ok(r, 'strlat --kfunc');
    assert.match(r.stderr, new RegExp(`attach path: ${path}\\b`));
    const rep = jsonLines(r.stdout).at(-1);
    assert.equal(rep.function, KFUNC);
    assert.equal(rep.count, 45);
    assert.equal(rep.hist.reduce((a: number, b: { count: number }) => a + b.count, 0), 45);
    assert.equal(rep.unmatched, 0);
    assert.ok(rep.total_ns > 0 && rep.max_ns > 0);
    // --stack: every call under some stack, the kernel part through the
    // syscall entry, then the user part (unnamed here: the command exits
    // before rbtrace reads its mappings, as the man page says). A kretprobe's
    // stack on older kernels stops at the trampoline that replaced the
    // return address (x86 fixed in 5.16): then it must say it was cut short.
    const stacks: { count: number; truncated?: boolean; stack: { name: string; kernel?: boolean }[] }[] = rep.stacks;
    assert.equal(stacks.reduce((a, x) => a + x.count, 0), 45, JSON.stringify(stacks));
    const top = stacks[0];
    const kernelFrames = top.stack.filter((f) => f.kernel).map((f) => f.name);
    const cut = path === 'kprobe' && /kretprobe_trampoline$/.test(kernelFrames[0] ?? '');
    if (cut) assert.equal(top.truncated, true, JSON.stringify(top));
    else assert.ok(kernelFrames.some((n) => SYSCALL_ENTRY.test(n)), JSON.stringify(top));
    assert.ok(top.stack.some((f) => !f.kernel), JSON.stringify(top));
    assert.deepEqual(await settledLeftovers(['strlat_fentry', 'strlat_fexit', 'strlat_kprobe', 'strlat_kretprobe']), []);
  });
}

// Several functions at once: one histogram each, told apart by BPF cookies
// (5.15+); 5.10 has none and must say so.
const COOKIES = !/^5\.10\./.test(KERNEL);
test(`${KERNEL} strlat [uprobe] --func work,main: ${COOKIES ? 'work 777, main 1' : 'refused (no BPF cookies)'}`, async () => {
  const r = await runRbtrace(['strlat', '--json', '--lib', WORK, '--func', 'work,main', ...REPORT_ON_STDOUT, '--', WORK, '777'], { timeoutMs: 120000 });
  if (!COOKIES) {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^rbtrace strlat: several functions at once need BPF cookies \(Linux 5\.15\+\)/);
    return;
  }
  ok(r, 'strlat');
  const by = new Map(jsonLines(r.stdout).map((x) => [x.function, x.count]));
  assert.deepEqual(Object.fromEntries(by), { work: 777, main: 1 });
});

const ALLOCS = buildC(`
#include <stdlib.h>
int main(int argc, char **argv) {
  for (int i = 0; i < atoi(argv[1]); i++) {
    void *volatile p = malloc(16 + i); /* volatile: the compiler may not drop the pair */
    free(p);
  }
  return 0;
}`, 'allocvm');
test(`${KERNEL} mallocstat [uprobe]: 500 more malloc and free than with 0 loops`, async () => {
  const counts = async (n: string) => {
    const r = await runRbtrace(['mallocstat', '--json', ...REPORT_ON_STDOUT, '--', ALLOCS, n], { timeoutMs: 120000 });
    ok(r, 'mallocstat');
    const f = jsonLines(r.stdout).at(-1).functions;
    return { malloc: f.malloc.count as number, free: f.free.count as number };
  };
  const base = await counts('0');
  const run = await counts('500');
  assert.deepEqual({ malloc: run.malloc - base.malloc, free: run.free - base.free }, { malloc: 500, free: 500 });
});

test(`${KERNEL} gcstat [usdt] -- ruby: 30 GC.start, 30 marks and sweeps at least`, async () => {
  const r = await runRbtrace(['gcstat', '--json', ...REPORT_ON_STDOUT, '--', 'ruby', '--disable-gems', '-e', '30.times { GC.start }'], { timeoutMs: 180000 });
  ok(r, 'gcstat');
  const rows = jsonLines(r.stdout).filter((x) => 'mark' in x);
  assert.ok(rows.reduce((a, x) => a + x.mark.count, 0) >= 30, r.stdout);
  assert.ok(rows.reduce((a, x) => a + x.sweep.count, 0) >= 30, r.stdout);
});

test(`${KERNEL} gcstat [usdt] system-wide: a ruby started after it, 20 GC.start seen`, async () => {
  const g = startRbtrace(['gcstat', '--json', '-v', '-i', '1']);
  await g.ready(120000);
  // sleep first: without BPF cookies (5.10) gcstat attaches per process, polled
  const ruby = spawn('ruby', ['--disable-gems', '-e', 'sleep 1; 20.times { GC.start }'], { stdio: 'ignore' });
  const code = await new Promise((res) => ruby.on('close', res));
  assert.equal(code, 0);
  await sleep(1500);
  g.signal('SIGINT');
  const f = await g.finished;
  ok(f, 'gcstat');
  const mine = jsonLines(f.stdout).filter((x) => x.pid === ruby.pid);
  assert.ok(mine.reduce((a, x) => a + x.mark.count, 0) >= 20, `${f.stdout}\n${f.stderr}`);
  assert.equal(/per process/.test(f.stderr), /^5\.10\./.test(KERNEL), 'per-process attach only without BPF cookies');
});
