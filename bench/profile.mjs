#!/usr/bin/env node
// bench/profile: what CPU sampling costs the profiled program, and how long
// symbolizing takes.
//
// 1. Slowdown at 99 Hz. The workload: a C program (frame pointers, a few
//    call levels) that, once told to go (a byte on stdin, so profilers
//    attach first), does a fixed amount of work and prints its own wall time
//    for it (start-up and profiler attach not counted). Cases, interleaved
//    round by round, the best of R rounds each:
//      plain;
//      rbtrace profile -F 99 -p PID;
//      perf record -F 99 -g -p PID;
//      bpftrace -e 'profile:hz:99 { @[ustack,kstack] = count(); }'.
//    Also, where kernel.bpf_stats_enabled can be set, the time per sample of
//    rbtrace's and bpftrace's BPF programs (run_time_ns / run_cnt).
// 2. Symbolization: 10,000 distinct stacks of 6-25 frames made of real
//    function addresses of a live python3 (its own functions, libc's, libm's)
//    and 4 kernel frames each, symbolized end to end by a fresh Symbolizer
//    (ELF and kallsyms reading included), then again (warm caches).
//
//   flock /tmp/rbtrace-tests.lock node bench/profile.mjs [R]   (as root, after npm run build; R=0: part 2 only)
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const R = Number(process.argv[2] ?? 5);
const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;
const { Symbolizer, parseMaps, clearSymbolTables } = await import(`${root}dist/src/core/stacks/index.js`);

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bench-'));
writeFileSync(join(dir, 'work.c'), `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
__attribute__((noinline)) unsigned long leaf(unsigned long n) {
  unsigned long s = 0;
  for (unsigned long i = 0; i < n; i++) { s = s * 31 + i; __asm__ volatile("" : "+r"(s)); }
  return s;
}
__attribute__((noinline)) unsigned long mid(unsigned long n) { return leaf(n) + leaf(n / 2); }
__attribute__((noinline)) unsigned long top(unsigned long n) { return mid(n) ^ mid(n / 3); }
int main(int argc, char **argv) {
  long rounds = atol(argv[1]);
  char c;
  if (read(0, &c, 1) != 1) return 1;
  struct timespec a, b;
  unsigned long s = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long r = 0; r < rounds; r++) s += top(1000000);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.9f %lu\\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, s & 1);
  return 0;
}
`);
const work = join(dir, 'work');
execFileSync('clang', ['-O2', '-fno-omit-frame-pointer', '-o', work, join(dir, 'work.c')]);
const ROUNDS = 700; // ~1.5 s on the development machine

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Start a process and collect its output; `ready` resolves when `re` shows up on stdout or stderr. */
function start(cmd, args, re) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const ready = new Promise((resolve, reject) => {
    const check = () => { if (!re || re.test(out) || re.test(err)) resolve(); };
    child.stdout.on('data', (d) => { out += d; check(); });
    child.stderr.on('data', (d) => { err += d; check(); });
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready: ${err}`)));
    if (!re) resolve();
  });
  const done = new Promise((r) => child.on('close', () => r({ out, err })));
  return { child, ready, done };
}

function bpfStats() {
  try {
    return JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 1 << 26 }))
      .filter((p) => p.type === 'perf_event');
  } catch {
    return [];
  }
}

/** One run of the workload under `tracer` (undefined: plain). */
async function runOnce(tracer) {
  const w = start(work, [String(ROUNDS)]);
  let t;
  if (tracer === 'rbtrace') {
    t = start(process.execPath, [rbtrace, 'profile', '-v', '-F', '99', '-p', String(w.child.pid)], /probes attached, tracing/);
  } else if (tracer === 'perf') {
    t = start('perf', ['record', '-F', '99', '-g', '-p', String(w.child.pid), '-o', join(dir, 'perf.data')]);
  } else if (tracer === 'bpftrace') {
    t = start('bpftrace', ['-e', 'profile:hz:99 { @[ustack,kstack] = count(); }'], /Attaching/);
  }
  if (t) await t.ready;
  if (tracer === 'perf') await sleep(1500); // perf says nothing when its events are open
  const before = bpfStats();
  w.child.stdin.end('g');
  const { out } = await w.done;
  const after = bpfStats();
  let perSample;
  for (const p of after) {
    const b = before.find((x) => x.id === p.id);
    if (b && p.run_cnt > b.run_cnt) perSample = (p.run_time_ns - b.run_time_ns) / (p.run_cnt - b.run_cnt);
  }
  if (t) {
    t.child.kill('SIGINT');
    await t.done;
  }
  return { seconds: Number(out.trim().split(' ')[0]), perSample };
}

let statsWas;
try {
  statsWas = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
} catch {
  statsWas = undefined;
}
const CASES = ['plain', 'rbtrace', 'perf', 'bpftrace'];
const results = Object.fromEntries(CASES.map((c) => [c, []]));
const perSample = { rbtrace: [], bpftrace: [] };
try {
  for (let r = 0; r < R; r++) {
    for (const c of CASES) {
      const res = await runOnce(c === 'plain' ? undefined : c);
      results[c].push(res.seconds);
      if (res.perSample !== undefined && perSample[c]) perSample[c].push(res.perSample);
    }
    process.stderr.write(`round ${r + 1}/${R}: ${CASES.map((c) => `${c} ${results[c].at(-1).toFixed(3)} s`).join(', ')}\n`);
  }
} finally {
  if (statsWas !== undefined) writeFileSync('/proc/sys/kernel/bpf_stats_enabled', statsWas);
}
const best = (xs) => Math.min(...xs);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const plain = best(results.plain);
if (R > 0) console.log(`\nworkload: ${ROUNDS} rounds of fixed work, 1 thread; best of ${R} (median in brackets)`);
for (const c of R > 0 ? CASES : []) {
  const b = best(results[c]);
  console.log(`  ${c.padEnd(9)} ${b.toFixed(3)} s [${median(results[c]).toFixed(3)}]  slowdown ${(((b / plain) - 1) * 100).toFixed(2)} %`);
}
for (const [c, xs] of Object.entries(perSample)) {
  if (xs.length) console.log(`  BPF time per sample, ${c}: ${(median(xs) / 1000).toFixed(1)} µs (median of ${xs.length} runs)`);
}

// ---- 2. symbolizing 10,000 distinct stacks ----------------------------------
const py = spawn('/usr/bin/python3', ['-c', 'import math, time; time.sleep(120)'], { stdio: 'ignore' });
try {
  let regions = [];
  for (let i = 0; i < 100 && !regions.some((r) => r.path.endsWith('libm.so.6')); i++) {
    await sleep(20);
    regions = parseMaps(readFileSync(`/proc/${py.pid}/maps`, 'utf8'));
  }
  // Function addresses of the mapped files, from nm (dynamic symbols), at their run-time addresses.
  const addrs = [];
  for (const path of [...new Set(regions.filter((r) => r.file && r.perms.includes('x')).map((r) => r.path))]) {
    const base = regions.find((r) => r.path === path && r.offset === 0);
    const firstLoad = parseInt(execFileSync('sh', ['-c', `readelf -lW ${path} | awk '$1 == "LOAD" { print $3; exit }'`], { encoding: 'utf8' }), 16);
    const nm = execFileSync('nm', ['-D', '--defined-only', path], { encoding: 'utf8', maxBuffer: 1 << 28 });
    for (const line of nm.split('\n')) {
      const [a, type] = line.split(' ');
      if (type === 'T' || type === 't') addrs.push(BigInt(base.start - firstLoad + parseInt(a, 16) + 4));
    }
  }
  const ktext = execFileSync('sh', ['-c', "awk '$2 == \"T\" { print $1 }' /proc/kallsyms | head -20000"], { encoding: 'utf8' }).trim().split('\n').map((a) => BigInt(`0x${a}`) + 8n);
  let seed = 12345; // xorshift32: deterministic, exact in 32-bit integer arithmetic
  const rand = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed % n; };
  const stacks = [];
  const seen = new Set();
  while (stacks.length < 10000) {
    const depth = 6 + rand(20);
    const user = Array.from({ length: depth }, () => addrs[rand(addrs.length)]);
    const kernel = Array.from({ length: 4 }, () => ktext[rand(ktext.length)]);
    const key = user.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    stacks.push({ user, kernel });
  }
  const frames = stacks.reduce((a, s) => a + s.user.length + s.kernel.length, 0);
  for (const pass of ['cold', 'warm']) {
    if (pass === 'cold') clearSymbolTables();
    const sym = new Symbolizer();
    if (pass === 'warm') for (const s of stacks.slice(0, 100)) sym.symbolize(py.pid, s.user, s.kernel); // tables read
    const t0 = process.hrtime.bigint();
    sym.notePid(py.pid);
    let named = 0;
    for (const s of stacks) named += sym.symbolize(py.pid, s.user, s.kernel).frames.filter((f) => !f.name.startsWith('[')).length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`\nsymbolize 10,000 distinct stacks (${frames} frames, ${new Set(addrs).size} functions in ${sym.tablesRead} files + kallsyms), ${pass}: ${ms.toFixed(0)} ms, ${named} frames named`);
  }
} finally {
  py.kill('SIGKILL');
}
