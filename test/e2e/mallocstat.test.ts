// mallocstat end to end: real uprobes on this machine's libc, against C and
// Rust programs whose allocator calls are known exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, buildC, runRbtrace, startRbtrace, sleep, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['ms_malloc', 'ms_calloc', 'ms_realloc', 'ms_reallocarray', 'ms_free', 'ms_posix_memalign', 'ms_aligned_alloc', 'ms_memalign', 'ms_return'];

interface FuncStats { count: number; bytes: number; total_ns?: number; timed?: number; avg_ns?: number; max_ns?: number; aliases?: string[] }
interface Rec { time: string; pid: number | null; comm?: string; final?: boolean; functions: Record<string, FuncStats>; sizes: { low: number; high: number; count: number }[] }

// Per loop, after start-up: 1000 malloc, 10 calloc, 500 realloc (250 growing a
// block, 250 from NULL: glibc's realloc then calls malloc itself, which must
// not be counted), 1510 free (250 of them free(NULL)). With argv[2] the
// program waits for a byte on stdin before its loops (for -p: attach first).
const PROG = `
#include <stdlib.h>
#include <unistd.h>
void *volatile nil; /* volatile: the compiler may not turn realloc(NULL) into malloc, nor drop free(NULL) */
int main(int argc, char **argv) {
  int loops = atoi(argv[1]);
  static void *blocks[1260];
  char c;
  if (argc > 2 && read(0, &c, 1) != 1) return 1;
  for (int l = 0; l < loops; l++) {
    int n = 0;
    for (int i = 0; i < 1000; i++) blocks[n++] = malloc(16 + i);
    for (int i = 0; i < 10; i++) blocks[n++] = calloc(4, 100);
    for (int i = 0; i < 250; i++) blocks[i] = realloc(blocks[i], 2000 + i);
    for (int i = 0; i < 250; i++) blocks[n++] = realloc(nil, 64);
    for (int i = 0; i < n; i++) free(blocks[i]);
    for (int i = 0; i < 250; i++) free(nil);
  }
  return 0;
}
`;
const PER_LOOP = { malloc: 1000, calloc: 10, realloc: 500, free: 1510, reallocarray: 0, posix_memalign: 0, aligned_alloc: 0 };
// The sizes the program asks for, per loop.
const sum = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i)).reduce((a, b) => a + b, 0);
const BYTES_PER_LOOP = {
  malloc: sum(1000, (i) => 16 + i),
  calloc: 10 * 4 * 100,
  realloc: sum(250, (i) => 2000 + i) + 250 * 64,
};

const prog = buildC(PROG, 'allocs');

function records(stdout: string): Rec[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function traceCommand(args: string[], cmd: string[]): Promise<Rec[]> {
  const r = await runRbtrace(['mallocstat', '--json', ...args, '--', ...cmd]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), [], 'nothing stays loaded');
  // With -- CMD the records are on stderr (the command owns stdout), among rbtrace's warnings if any.
  return records(r.stderr.split('\n').filter((l) => l.startsWith('{')).join('\n'));
}

function counts(rec: Rec): Record<string, number> {
  return Object.fromEntries(Object.entries(rec.functions).map(([k, v]) => [k, v.count]));
}

function minus(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - (b[k] ?? 0)]));
}

test('counts equal the calls the program makes (baseline: the same program with 0 loops)', async () => {
  const [base] = await traceCommand([], [prog, '0']);
  const [one] = await traceCommand([], [prog, '1']);
  const [three] = await traceCommand([], [prog, '3']);
  assert.deepEqual(minus(counts(one), counts(base)), PER_LOOP);
  assert.deepEqual(minus(counts(three), counts(base)), Object.fromEntries(Object.entries(PER_LOOP).map(([k, v]) => [k, 3 * v])));
  assert.equal(one.final, true);
  assert.ok(typeof one.pid === 'number' && one.pid > 0);
  assert.ok(!Number.isNaN(Date.parse(one.time)));
  // bytes: exactly what the program asked for
  for (const [fn, bytes] of Object.entries(BYTES_PER_LOOP)) {
    assert.equal(one.functions[fn].bytes - base.functions[fn].bytes, bytes, fn);
  }
  assert.equal(one.functions.free.bytes, 0);
  // No latency without -L: not malloc's, nor realloc's (whose return is probed all the same)
  assert.equal(one.functions.realloc.total_ns, undefined);
  assert.equal(one.functions.realloc.avg_ns, undefined);
  assert.equal(one.functions.malloc.total_ns, undefined);
  // the size histogram holds one entry per sized call
  const histDelta = one.sizes.reduce((a, b) => a + b.count, 0) - base.sizes.reduce((a, b) => a + b.count, 0);
  assert.equal(histDelta, 1000 + 10 + 500);
  // glibc: aligned_alloc and memalign are one function, probed once
  assert.ok(!('memalign' in one.functions) || !('aligned_alloc' in one.functions));
});

test('-L times every function and the counts stay exact', async () => {
  const [base] = await traceCommand(['-L'], [prog, '0']);
  const [one] = await traceCommand(['-L'], [prog, '1']);
  assert.deepEqual(minus(counts(one), counts(base)), PER_LOOP);
  for (const fn of ['malloc', 'calloc', 'realloc', 'free']) {
    const f = one.functions[fn];
    assert.equal(f.timed, f.count, `${fn}: every call's return seen`);
    assert.ok(f.total_ns! > 0 && f.max_ns! > 0 && f.avg_ns! > 0, fn);
  }
});

test('-i: interval reports add up to the whole run', async () => {
  const cmd = ['/bin/sh', '-c', `${prog} 1; sleep 0.6; ${prog} 1`];
  // Children of the shell, counted from their first call: --all-processes.
  const [whole] = await traceCommand(['--all-processes'], cmd);
  const parts = await traceCommand(['--all-processes', '-i', '0.2'], cmd);
  assert.ok(parts.length >= 3, `several reports: ${parts.length}`);
  assert.equal(parts.filter((r) => r.final).length, 1);
  assert.ok(parts.slice(0, -1).every((r) => !r.final && (r as Rec & { interval_s: number }).interval_s === 0.2));
  const total: Record<string, number> = {};
  for (const r of parts) for (const [k, v] of Object.entries(counts(r))) total[k] = (total[k] ?? 0) + v;
  assert.deepEqual(total, counts(whole));
  // the two loops fell in different intervals
  assert.ok(parts.filter((r) => r.functions.calloc.count > 0).length >= 2, 'loops in separate intervals');
});

test('-p PID: only that process, from the moment of attach', async () => {
  const child = spawn(prog, ['2', 'wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const r = startRbtrace(['mallocstat', '--json', '-v', '-p', String(child.pid)]);
  await r.ready();
  child.stdin!.end('g');
  await exited;
  await sleep(100);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const [rec] = records(f.stdout);
  assert.equal(rec.pid, child.pid);
  assert.deepEqual(counts(rec), Object.fromEntries(Object.entries(PER_LOOP).map(([k, v]) => [k, 2 * v])));
  assert.equal(rec.functions.malloc.bytes, 2 * BYTES_PER_LOOP.malloc);
});

test('-P separates two concurrent processes', async () => {
  const recs = await traceCommand(['-P', '--all-processes'], ['/bin/sh', '-c', `${prog} 1 & ${prog} 2 & wait`]);
  const progs = recs.filter((r) => r.comm === 'allocs');
  assert.equal(progs.length, 2, JSON.stringify(recs.map((r) => [r.pid, r.comm])));
  assert.notEqual(progs[0].pid, progs[1].pid);
  assert.ok(recs.some((r) => r.comm === 'sh'), 'the shell is a process of its own');
  const [a, b] = progs.map(counts);
  // The same start-up in both: they differ by one loop, in one direction.
  const diff = a.malloc < b.malloc ? minus(b, a) : minus(a, b);
  assert.deepEqual(diff, PER_LOOP);
  const bytes = (r: Rec) => r.functions.malloc.bytes;
  assert.equal(Math.abs(bytes(progs[0]) - bytes(progs[1])), BYTES_PER_LOOP.malloc);
});

test('Rust: a Vec made with capacity stops the reallocs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-rust-'));
  writeFileSync(join(dir, 'vec.rs'), `
use std::hint::black_box;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[2].parse().unwrap();
    let mut v: Vec<u64> = if args[1] == "cap" { Vec::with_capacity(n) } else { Vec::new() };
    for i in 0..n { v.push(black_box(i as u64)); }
    black_box(&v);
}
`);
  const bin = join(dir, 'vec');
  // rustup installs into ~/.cargo/bin, which a CI shell's PATH may lack.
  const rustc = ['rustc', join(homedir(), '.cargo/bin/rustc')].find((c) => spawnSync(c, ['--version']).status === 0);
  assert.ok(rustc, 'rustc is needed (rustup or the rustc package)');
  execFileSync(rustc, ['-O', '-o', bin, join(dir, 'vec.rs')], { stdio: 'pipe' });
  const realloc = async (mode: string, n: number) => (await traceCommand([], [bin, mode, String(n)]))[0].functions.realloc.count;
  const base = await realloc('grow', 0);
  const grow = await realloc('grow', 100000);
  const cap = await realloc('cap', 100000);
  // Vec<u64> starts at capacity 4 and doubles: 4 * 2^15 = 131072 >= 100000.
  assert.equal(grow - base, 15);
  assert.equal(cap - base, 0);
});

test('human output: a table of every function and a size histogram', async () => {
  const r = await runRbtrace(['mallocstat', '--', prog, '1']);
  assert.equal(r.code, 0, r.stderr);
  // Latency columns with -L only (realloc's return is probed either way, its time not shown).
  assert.match(r.stderr, /^FUNC\s+CALLS\s+BYTES$/m);
  assert.match(r.stderr, /^realloc\s+\d[\d,]*\s+\S+ \S*B$/m);
  const timed = await runRbtrace(['mallocstat', '-L', '--', prog, '1']);
  assert.equal(timed.code, 0, timed.stderr);
  assert.match(timed.stderr, /^FUNC\s+CALLS\s+BYTES\s+AVG\s+MAX\s+TOTAL$/m);
  assert.match(r.stderr, /^malloc\s+1,\d{3}\s/m);
  assert.match(r.stderr, /^calloc\s+10\s+3\.91 KiB/m);
  assert.match(r.stderr, /^\s+bytes\s+: count\s+distribution$/m);
});

test('a statically linked program: one-line error naming what is missing', async () => {
  const stat = buildC(PROG, 'static', ['-static']);
  const r = await runRbtrace(['mallocstat', '--', stat, '0']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^rbtrace mallocstat: .*static.* statically linked: it uses no libc \(.*--lib /);

  const child = spawn(stat, ['1', 'wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    await sleep(100);
    const p = await runRbtrace(['mallocstat', '-p', String(child.pid)]);
    assert.equal(p.code, 1);
    assert.match(p.stderr, new RegExp(`^rbtrace mallocstat: process ${child.pid} \\(static\\) does not map libc \\(.*--lib `));
    assert.equal(p.stderr.trim().split('\n').length, 1, p.stderr);
    // ... and the hint works: its own malloc, traced in the executable
    const q = startRbtrace(['mallocstat', '--json', '-v', '-p', String(child.pid), '--lib', stat]);
    await q.ready();
    child.stdin!.end('g');
    await new Promise((resolve) => child.on('exit', resolve));
    q.signal('SIGINT');
    const f = await q.finished;
    assert.equal(f.code, 0, f.stderr);
    // A static link holds only the functions the program uses: reallocarray & co. are absent.
    const got = counts(records(f.stdout)[0]);
    assert.deepEqual(got, Object.fromEntries(Object.keys(got).map((k) => [k, PER_LOOP[k as keyof typeof PER_LOOP]])));
    assert.deepEqual(['malloc', 'calloc', 'realloc', 'free'].filter((k) => !(k in got)), []);
  } finally {
    child.kill();
  }
});

test('symbols missing from the allocator: one-line error naming them', async () => {
  const r = await runRbtrace(['mallocstat', '--prefix', 'je_', '--', prog, '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^rbtrace mallocstat: no je_malloc, je_free in \/\S+libc\.so\.6 \(/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('the man page names every long option and the JSON fields', () => {
  const man = readFileSync(join(ROOT, 'man/rbtrace-mallocstat.8'), 'utf8').replace(/\\-/g, '-'); // roff's \- is a '-'
  const help = execFileSync(process.execPath, [join(ROOT, 'bin/rbtrace'), 'mallocstat', '--help'], { encoding: 'utf8' });
  const longs = new Set([...help.matchAll(/--([a-z][a-z-]+)/g)].map((m) => m[1]));
  for (const o of longs) assert.ok(man.includes(`--${o}`), `--${o} in the man page`);
  for (const field of ['time', 'pid', 'functions', 'count', 'bytes', 'total_ns', 'sizes']) assert.match(man, new RegExp(`\\b${field}\\b`));
});

// Issue 10, item 2: counting starts at the command's execve. The gate that
// holds the command before its exec is a bash: its allocations (about 120
// mallocs) were counted as the command's. Oracle: the counting LD_PRELOAD
// shim of test/oracle, which only the command's own image ever loads.
test('-- CMD counts from the command\'s execve: /bin/true and a C program match the LD_PRELOAD shim exactly', async () => {
  const { runWithShim } = await import('../oracle/oracles.js');
  for (const cmd of [['/bin/true'], [prog, '1']]) {
    const shim = await runWithShim(cmd);
    assert.equal(shim.perPid.size, 1, 'one process, one count file');
    const [rec] = await traceCommand([], cmd);
    const c = counts(rec);
    const want = { ...shim.total, aligned_alloc: shim.total.aligned_alloc + shim.total.memalign };
    for (const fn of Object.keys(c)) assert.equal(c[fn], want[fn as keyof typeof want], `${cmd.join(' ')}: ${fn}`);
  }
});
