// bcc's habits (issue 25 item 5): the flags bcc's tools use where they mean
// the same here (profile -f/-U/-K, mallocstat -T, funclatency's LIB:FUNC),
// and strlat --func looking in the command's own executable before libruby.
// ("did you mean" for a short or misspelled option: cli.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StrlatReport } from '../../src/tools/strlat/collect.js';
import { buildC, runRbtrace, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['profile_sample', 'ms_malloc', 'ms_free', 'ms_return', 'strlat_entry', 'strlat_return'];

// busy() spins in user space; the write()s give kernel stacks too.
const BUSY = buildC(`
#include <time.h>
#include <unistd.h>
volatile unsigned long sink;
__attribute__((noinline)) void busy(void) { for (int i = 0; i < 200000; i++) sink += i; }
int main(void) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int fd = open("/dev/null", 1);
  char buf[4096] = {0};
  do { busy(); for (int i = 0; i < 20; i++) write(fd, buf, sizeof buf); clock_gettime(CLOCK_MONOTONIC, &b); }
  while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < 1.5);
  return 0;
}`, 'busy', ['-O1', '-fno-omit-frame-pointer', '-include', 'fcntl.h']);

// With -- CMD the stacks are on stderr (the command owns stdout), after the "Sampling..." banner.
const folded = (text: string) => text.trim().split('\n').filter((l) => l.includes(';')).map((l) => l.slice(0, l.lastIndexOf(' ')).split(';').slice(1));

test('profile -f -U: folded stacks with no kernel frame; -f -K: kernel frames only', async () => {
  const user = await runRbtrace(['profile', '-f', '-U', '-F', '199', '--', BUSY], { timeoutMs: 30000 });
  assert.equal(user.code, 0, user.stderr);
  const ustacks = folded(user.stderr);
  assert.ok(ustacks.some((s) => s.includes('busy')), `busy() sampled: ${user.stderr}`);
  for (const s of ustacks) assert.ok(s.every((f) => !f.endsWith('_[k]')), `-U: no kernel frame in ${s.join(';')}`);

  const kernel = await runRbtrace(['profile', '-f', '-K', '-F', '199', '--', BUSY], { timeoutMs: 30000 });
  assert.equal(kernel.code, 0, kernel.stderr);
  const kstacks = folded(kernel.stderr);
  assert.ok(kstacks.some((s) => s.some((f) => f.endsWith('_[k]'))), `kernel stacks of the write()s: ${kernel.stderr}`);
  // A sample taken in user mode has no kernel stack: "[user]", never a user frame.
  for (const s of kstacks) assert.ok(s.every((f) => f.endsWith('_[k]') || f === '[user]'), `-K: kernel frames only in ${s.join(';')}`);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

// Three leak sites of 40, 20 and 10 blocks of 4096 bytes, largest first.
const LEAKS = buildC(`
#include <stdlib.h>
void *volatile sink;
__attribute__((noinline)) void leak_a(void) { for (int i = 0; i < 40; i++) sink = malloc(4096); }
__attribute__((noinline)) void leak_b(void) { for (int i = 0; i < 20; i++) sink = malloc(4096); }
__attribute__((noinline)) void leak_c(void) { for (int i = 0; i < 10; i++) sink = malloc(4096); }
int main(void) { leak_a(); leak_b(); leak_c(); return 0; }`, 'leaks3', ['-O2', '-fno-omit-frame-pointer']);

const blocks = (text: string) => text.split('\n').filter((l) => /^ {2}\S.* in [\d,]+ allocations? .*from:$/.test(l));

test('mallocstat --leaks -T 1: the largest stack only, and how many are left out', async () => {
  const all = await runRbtrace(['mallocstat', '--no-color', '--leaks', '--', LEAKS], { timeoutMs: 30000 });
  assert.equal(all.code, 0, all.stderr);
  assert.ok(blocks(all.stderr).length >= 3, all.stderr);
  const top = await runRbtrace(['mallocstat', '--no-color', '--leaks', '-T', '1', '--', LEAKS], { timeoutMs: 30000 });
  assert.equal(top.code, 0, top.stderr);
  const shown = blocks(top.stderr);
  assert.equal(shown.length, 1, top.stderr);
  assert.match(shown[0], /^ {2}160 KiB in 40 allocations/, 'leak_a: 40 x 4096 bytes, the largest');
  assert.match(top.stderr, new RegExp(`\\.\\.\\. ${blocks(all.stderr).length - 1} more stacks \\(-T N shows more`));
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

// work() runs exactly N times; malloc once per call.
const APP = buildC(`
#include <stdlib.h>
void *volatile sink;
__attribute__((noinline)) long work(long x) { sink = malloc(16 + x % 7); free(sink); return x; }
int main(int argc, char **argv) { int n = atoi(argv[1]); for (int i = 0; i < n; i++) work(i); return 0; }`, 'app', ['-O1']);

const lastReport = (stdout: string): StrlatReport => JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)!);

test('strlat --func FUNC -- ./app: the function of the executable itself, said with -v', async () => {
  const r = await runRbtrace(['strlat', '--json', '-v', '--func', 'work', '--', APP, '1234'], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastReport(r.stderr).count, 1234, 'work() is called exactly 1234 times');
  assert.match(r.stderr, new RegExp(`looking for work in ${APP}: the command's executable defines it`));
  // Not in the executable (ruby's binary links libruby): the Ruby it uses.
  const ruby = await runRbtrace(['strlat', '--json', '-v', '--func', 'rb_str_new', '--', 'ruby', '--disable-gems', '-e', '1'], { timeoutMs: 30000 });
  assert.equal(ruby.code, 0, ruby.stderr);
  assert.match(ruby.stderr, /looking for rb_str_new in \S*libruby\S*: not in the executable: the target's Ruby/);
});

test('strlat --func c:malloc: funclatency\'s LIB:FUNC, the count the LD_PRELOAD shim sees', async () => {
  const { runWithShim } = await import('../oracle/oracles.js');
  const cmd = [APP, '800'];
  const shim = await runWithShim(cmd);
  const r = await runRbtrace(['strlat', '--json', '--func', 'c:malloc', '--', ...cmd], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastReport(r.stderr).count, shim.total.malloc);
  assert.ok(shim.total.malloc >= 800, 'one malloc per work() call at least');
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});
