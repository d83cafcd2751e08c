// strlat end to end: real uprobes on programs built here and on ruby.
import type { StrlatReport } from '../../src/tools/strlat/collect.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildC, runRbtrace, startRbtrace, sleep, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['strlat_entry', 'strlat_return'];

type Report = StrlatReport;

function lastReport(stdout: string): Report {
  const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  assert.ok(lines.length > 0, `no JSON in: ${stdout}`);
  return JSON.parse(lines.at(-1)!);
}

const histSum = (h: { count: number }[]) => h.reduce((a, b) => a + b.count, 0);

// work() is called exactly N times, with lengths 0..63 as 2nd argument;
// rec() recurses 5 deep, 100 times (500 calls, nested returns); 4 threads
// call work too, so threads must keep separate start times.
const PROG = `
#include <pthread.h>
#include <stdlib.h>
volatile long sink;
__attribute__((noinline)) long work(const char *p, long len) { sink += len; return len; }
__attribute__((noinline)) long rec(int d) { if (d <= 1) return 1; long r = rec(d - 1) + 1; sink += r; return r; }
static void *thr(void *a) { for (int i = 0; i < 250; i++) work(0, i % 64); return 0; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  for (int i = 0; i < n; i++) work(0, i % 64);
  for (int i = 0; i < 100; i++) rec(5);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, thr, 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
  return 0;
}`;
const prog = buildC(PROG, 'prog', ['-lpthread']);

test('a C function called exactly N times: count == N and the histogram adds up to N', async () => {
  const r = await runRbtrace(['strlat', '--json', '--lib', prog, '--func', 'work', '--size', '--arg', '2', '--', prog, '3000']);
  assert.equal(r.code, 0, r.stderr);
  const rep = lastReport(r.stderr);
  assert.equal(rep.count, 3000 + 4 * 250);
  assert.equal(histSum(rep.hist), rep.count);
  assert.equal(rep.unmatched, 0);
  assert.equal(rep.stale, 0);
  // lengths 0..63: slot 0 holds 0 and 1, slot k holds 2^k..2^(k+1)-1
  const size = rep.size_hist!;
  assert.equal(histSum(size), rep.count);
  const lens = [...Array.from({ length: 3000 }, (_, i) => i % 64), ...Array.from({ length: 1000 }, (_, i) => (i % 250) % 64)];
  const inSlot = (lo: number, hi: number) => lens.filter((l) => l >= lo && l <= hi).length;
  const slot = (low: number) => size.find((b) => b.low === low)?.count;
  assert.equal(slot(32), inSlot(32, 63));
  assert.equal(slot(4), inSlot(4, 7));
  assert.equal(size[0].low, 0);
  assert.equal(size[0].count, inSlot(0, 1));
  assert.ok(rep.p50_ns > 0 && rep.p99_ns >= rep.p50_ns && rep.max_ns >= rep.avg_ns);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('recursion: every nested call is paired with its own return', async () => {
  const r = await runRbtrace(['strlat', '--json', '--lib', prog, '--func', 'rec', '--', prog, '10']);
  assert.equal(r.code, 0, r.stderr);
  const rep = lastReport(r.stderr);
  assert.equal(rep.count, 500);
  assert.equal(rep.unmatched + rep.stale + rep.dropped, 0);
});

test('a demangled C++ name finds the mangled symbol', async () => {
  const dir = dirname(prog);
  const src = join(dir, 'app.cc');
  const bin = join(dir, 'app');
  writeFileSync(src, `namespace app { struct P { __attribute__((noinline)) int parse(int x); };
    int P::parse(int x) { return x * 3; } }
    volatile int s; int main() { app::P p; for (int i = 0; i < 77; i++) s += p.parse(i); return 0; }`);
  execFileSync('g++', ['-O1', '-o', bin, src]);
  const r = await runRbtrace(['strlat', '--json', '--lib', bin, '--func', 'app::P::parse', '--', bin]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lastReport(r.stderr).count, 77);
});

test('ruby: rb_str_new is called at least once per string the script builds', async () => {
  const r = await runRbtrace(['strlat', '--json', '--', 'ruby', '--disable-gems', '-e', '20000.times { |i| i.to_s }']);
  assert.equal(r.code, 0, r.stderr);
  const rep = lastReport(r.stderr);
  assert.equal(rep.function, 'rb_str_new');
  assert.ok(rep.count >= 20000, `count ${rep.count}`);
  assert.equal(histSum(rep.hist), rep.count);
});

test('human output: -u histogram, percentiles said to come from buckets', async () => {
  const r = await runRbtrace(['strlat', '-u', '--lib', prog, '--func', 'work', '--', prog, '100']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /usecs\s+: count\s+distribution/);
  // Each percentile is a bucket the histogram draws, the one its share of calls reaches.
  const m = /work: count 1,100, avg .*p50 (\d+) -> (\d+) usecs, p90 (\d+) -> (\d+) usecs, p99 (\d+) -> (\d+) usecs, max /.exec(r.stderr);
  assert.ok(m, r.stderr);
  const rows = [...r.stderr.matchAll(/^\s*(\d+) -> (\d+)\s+: (\d+)\s/gm)].map((x) => ({ low: x[1], high: x[2], count: Number(x[3]) }));
  const total = rows.reduce((t, x) => t + x.count, 0);
  assert.equal(total, 1100, 'the histogram holds every call');
  for (const [p, low, high] of [[50, m[1], m[2]], [90, m[3], m[4]], [99, m[5], m[6]]] as const) {
    const at = rows.findIndex((x) => x.low === low && x.high === high);
    assert.ok(at >= 0 && rows[at].count > 0, `p${p}'s bucket ${low} -> ${high} is a drawn, non-empty row`);
    const upTo = rows.slice(0, at + 1).reduce((t, x) => t + x.count, 0);
    assert.ok(upTo >= (p / 100) * total && upTo - rows[at].count < (p / 100) * total, `p${p}: the first bucket reaching ${p}% of the calls`);
  }
  assert.match(r.stderr, /pN: the histogram bucket holding the call at the Nth percentile, p50 the median call/);
});

test('-p on a running ruby, then Ctrl-C: final report, exit 0, nothing left attached', async () => {
  const ruby = spawn('ruby', ['--disable-gems', '-e', 'loop { 200.times { |i| i.to_s }; sleep 0.01 }'], { stdio: 'ignore' });
  try {
    await sleep(300);
    const rb = startRbtrace(['strlat', '-v', '--json', '-p', String(ruby.pid)]);
    await rb.ready();
    await sleep(700);
    rb.signal('SIGINT');
    const f = await rb.finished;
    assert.equal(f.code, 0, f.stderr);
    assert.ok(lastReport(f.stdout).count >= 200);
    assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  } finally {
    ruby.kill('SIGKILL');
  }
});

test('-i: one JSON report per interval', async () => {
  // -o FILE: the interval reports alone, every line a record (the command's output and the banner elsewhere).
  const file = join(mkdtempSync(join(tmpdir(), 'rbtrace-strlat-')), 'reports.json');
  // --all-processes: the shell's short-lived children counted from their first call.
  const r = await runRbtrace(['strlat', '--json', '-i', '0.3', '-o', file, '--all-processes', '--lib', prog, '--func', 'work', '--',
    'sh', '-c', `${prog} 10; sleep 1; ${prog} 10`]);
  assert.equal(r.code, 0, r.stderr);
  const text = readFileSync(file, 'utf8');
  const reps = text.trim().split('\n').map((l) => JSON.parse(l) as Report);
  assert.ok(reps.length >= 3, text);
  assert.equal(reps.reduce((a, x) => a + x.count, 0), 2 * 1010);
});

test('bad input: one-line errors', async () => {
  let r = await runRbtrace(['strlat', '--lib', prog, '--func', 'no_such_fn', '--', prog, '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^rbtrace strlat: no function 'no_such_fn' in .*\(.*\)\n$/);
  r = await runRbtrace(['strlat', '--size', '--arg', '9', '--', prog, '1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^rbtrace strlat: --arg wants/);
  r = await runRbtrace(['strlat', '-u', '-m', '--', prog, '1']);
  assert.equal(r.code, 2);
});

// Issue 10, item 2: with -- CMD, calls made by the gate (the bash holding
// the command before its exec: 139 mallocs) are not the command's.
// Oracle: the counting LD_PRELOAD shim of test/oracle.
test('-- CMD counts from the command\'s execve: malloc calls equal the LD_PRELOAD shim\'s', async () => {
  const { runWithShim } = await import('../oracle/oracles.js');
  const allocs = buildC(`#include <stdlib.h>
int main(int argc, char **argv) { for (int i = 0; i < atoi(argv[1]); i++) free(malloc(32 + i)); return 0; }`, 'allocs');
  for (const cmd of [['/bin/true'], [allocs, '500']]) {
    const shim = await runWithShim(cmd);
    const r = await runRbtrace(['strlat', '--json', '--lib', 'c', '--func', 'malloc', '--', ...cmd]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lastReport(r.stderr).count, shim.total.malloc, cmd.join(' '));
  }
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});
