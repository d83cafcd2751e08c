// mallocstat --leaks end to end: real uprobes on this machine's libc and a C
// program whose unfreed blocks are known exactly (LeakSanitizer, run on the
// same source in the first test, says the same: one leak site, 100 blocks of
// 4096 bytes). Every other block it makes, through every allocator function
// mallocstat probes (malloc, calloc, realloc growing/shrinking/from NULL/to
// 0 bytes/failing, reallocarray, posix_memalign, aligned_alloc), is freed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { buildC, runRbtrace, startRbtrace, sleep, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['ms_malloc', 'ms_free', 'ms_return', 'ms_exit', 'ms_exec'];

const LEAKER = `
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
void *volatile sink; /* volatile: the compiler may not drop a malloc/free pair */
void *volatile nil;  /* nor turn realloc(NULL, n) into malloc(n) */
volatile size_t huge = PTRDIFF_MAX; /* realloc to this fails: the old block stays */
__attribute__((noinline)) void leak_blocks(int n) {
  for (int i = 0; i < n; i++) {
    void *p = malloc(4096);
    if (realloc(p, huge)) abort(); /* fails, p stays (and stays this stack's) */
    sink = p;
  }
}
__attribute__((noinline)) void churn(int n) {
  void *keep[300] = {0};
  for (int i = 0; i < n; i++) {
    void *a = malloc(100 + i % 50); sink = a;
    void *b = calloc(3, 40); sink = b;
    void *c = realloc(nil, 64); sink = c;
    c = realloc(c, 4000); sink = c;
    void *d = 0;
    if (posix_memalign(&d, 64, 256)) abort();
    sink = d;
    void *e = aligned_alloc(64, 128); sink = e;
    void *f = reallocarray(0, 10, 10); sink = f;
    void *z = malloc(8); sink = z;
    if (realloc(z, 0)) abort(); /* glibc: frees z */
    keep[i % 300] = realloc(keep[i % 300], 32 + i % 7);
    free(a); free(b); free(c); free(d); free(e); free(f);
  }
  for (int k = 0; k < 300; k++) free(keep[k]);
}
int main(int argc, char **argv) {
  char c;
  if (argc > 1 && read(0, &c, 1) != 1) return 1;
  churn(500);
  leak_blocks(100);
  churn(500);
  return 0;
}
`;
const FLAGS = ['-O2', '-fno-omit-frame-pointer'];
const leaker = buildC(LEAKER, 'leaker', FLAGS);

interface JsonFrame { function: string; module?: string; address: string; offset?: number }
interface Group { stack: JsonFrame[]; count: number; bytes: number; pid?: number; truncated?: boolean }
interface Rec { final?: boolean; leaks?: Group[]; leaked?: { count: number; bytes: number; max_allocs: number; untracked: number; lost_stacks: number } }

/** The last record; with -- CMD they are on stderr, among rbtrace's warnings (--max-allocs'). */
function finalRecord(text: string): Rec {
  const recs = text.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Rec);
  const last = recs.at(-1)!;
  assert.equal(last.final, true);
  return last;
}

/** Groups with a frame in the program's own code (its executable). */
const ownGroups = (rec: Rec) => rec.leaks!.filter((g) => g.stack.some((f) => f.module === leaker));

function assertOneLeakSite(rec: Rec): void {
  const own = ownGroups(rec);
  assert.equal(own.length, 1, `one stack from the program's code: ${JSON.stringify(own, null, 1)}`);
  const [g] = own;
  assert.equal(g.count, 100);
  assert.equal(g.bytes, 409_600);
  // innermost first: the function that called malloc, then its caller
  assert.equal(g.stack[0].function, 'leak_blocks');
  assert.equal(g.stack[1].function, 'main');
  assert.ok(!g.truncated);
  assert.equal(rec.leaked!.untracked, 0);
  // largest first
  for (let i = 1; i < rec.leaks!.length; i++) assert.ok(rec.leaks![i - 1].bytes >= rec.leaks![i].bytes);
}

test('the oracle: LeakSanitizer finds the same single leak site in the same program', () => {
  const asan = buildC(LEAKER, 'leaker-asan', ['-O2', '-fsanitize=address']);
  // allocator_may_return_null: the failing realloc returns NULL, as glibc's does (ASan aborts by default).
  const r = spawnSync(asan, [], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'allocator_may_return_null=1' } });
  assert.match(r.stderr, /SUMMARY: AddressSanitizer: 409600 byte\(s\) leaked in 100 allocation\(s\)\./);
  assert.equal([...r.stderr.matchAll(/^Direct leak/gm)].length, 1, r.stderr);
  assert.match(r.stderr, /in leak_blocks /);
});

test('--leaks -p PID: one stack through leak_blocks, 100 blocks, 409,600 bytes; nothing else from the program', async () => {
  const child = spawn(leaker, ['wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const r = startRbtrace(['mallocstat', '--leaks', '--json', '-v', '-p', String(child.pid)]);
  await r.ready();
  child.stdin!.end('g');
  await exited;
  await sleep(100);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const rec = finalRecord(f.stdout);
  assertOneLeakSite(rec);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), [], 'nothing stays loaded');
});

test('--leaks -- CMD: the same, for a command rbtrace starts (its mappings read at its first allocation)', async () => {
  const r = await runRbtrace(['mallocstat', '--leaks', '--json', '--', leaker]);
  assert.equal(r.code, 0, r.stderr);
  assertOneLeakSite(finalRecord(r.stderr));
  // text: the same group, with its frames
  const t = await runRbtrace(['mallocstat', '--leaks', '--', leaker]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /^ {2}400 KiB in 100 allocations from:\n {4}leak_blocks\+0x[0-9a-f]+ \[.*leaker\]\n {4}main\+/m);
});

test('--older: blocks younger than that are left out', async () => {
  const r = await runRbtrace(['mallocstat', '--leaks', '--older', '3600', '--json', '--', leaker]);
  assert.equal(r.code, 0, r.stderr);
  const rec = finalRecord(r.stderr);
  assert.deepEqual(rec.leaks, []);
  assert.equal(rec.leaked!.count, 0);
});

test('--max-allocs: the cap holds and is reported', async () => {
  const r = await runRbtrace(['mallocstat', '--leaks', '--max-allocs', '20', '--json', '--', leaker]);
  assert.equal(r.code, 0, r.stderr);
  const rec = finalRecord(r.stderr);
  assert.equal(rec.leaked!.max_allocs, 20);
  assert.ok(rec.leaked!.untracked > 0, JSON.stringify(rec.leaked));
  assert.ok(rec.leaked!.count <= 20);
  assert.match(r.stderr, /^rbtrace mallocstat: [\d,]+ allocations not tracked: --max-allocs 20 reached \(raise --max-allocs\)$/m);
});

test('--older and --max-allocs without --leaks: usage error, one line, exit 2', async () => {
  for (const args of [['--older', '5'], ['--max-allocs', '10']]) {
    const r = await runRbtrace(['mallocstat', ...args, '--', '/bin/true']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^rbtrace mallocstat: --(older|max-allocs) needs --leaks \(add --leaks\)/);
  }
});
