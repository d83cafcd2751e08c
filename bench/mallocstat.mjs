#!/usr/bin/env node
// bench/mallocstat: what one probed allocator call costs, on 1, 16 and 64
// threads, for count mode and --leaks, against bpftrace and an uninstrumented run.
//
// The workload: a C program that, once told to go (a byte on stdin, so that
// tracers attach first), starts T threads that together run N iterations of
// malloc(32)/free (N/T each): 2N probed calls whatever T is, so the cost per
// call can be compared across thread counts. It prints the wall time and the
// CPU time (CLOCK_PROCESS_CPUTIME_ID: every thread, including the uprobe traps
// handled in their context) of its threads, so tracer start-up and tear-down
// do not count. Each case keeps the best of R rounds; rounds go through every
// case in turn, so that a busy spell of the machine does not fall on one case
// only. Cases, all attached to the one process (-p), the same eight functions
// probed:
//   plain                                   (uninstrumented)
//   rbtrace mallocstat -p PID               (count mode: counts, sizes; realloc timed)
//   rbtrace mallocstat --leaks -p PID       (every live allocation and its stack)
//   bpftrace -p PID 'uprobe:libc:malloc,... { @ = count(); }'   (the one-liner)
// Prints, per thread count: CPU and wall time, the cost per probed call over
// plain, and each tracer's time as a ratio to bpftrace's and to plain. The
// time spent in the BPF programs themselves (kernel.bpf_stats_enabled:
// run_time_ns / run_cnt over the loop) is printed too: the part a tool
// controls; the rest is the trap into the kernel, the same for every tracer.
//
//   node bench/mallocstat.mjs [N] [R] [THREADS]   (as root, after npm run build)
//   defaults: N = 160000, R = 3, THREADS = 1,16,64
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 160000);
const R = Number(process.argv[3] ?? 3);
const THREADS = (process.argv[4] ?? '1,16,64').split(',').map(Number);
const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bench-'));
writeFileSync(join(dir, 'loop.c'), `
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long per;
static void *run(void *arg) {
  for (long i = 0; i < per; i++) {
    void *volatile p = malloc(32);
    free(p);
  }
  return 0;
}
static double secs(struct timespec a, struct timespec b) { return (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9; }
int main(int argc, char **argv) {
  int t = atoi(argv[1]);
  per = atol(argv[2]) / t;
  pthread_t th[1024];
  char c;
  if (t < 1 || t > 1024 || read(0, &c, 1) != 1) return 1;
  struct timespec w0, w1, c0, c1;
  clock_gettime(CLOCK_MONOTONIC, &w0);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  for (int i = 0; i < t; i++) pthread_create(&th[i], 0, run, 0);
  for (int i = 0; i < t; i++) pthread_join(th[i], 0);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  clock_gettime(CLOCK_MONOTONIC, &w1);
  printf("%.9f %.9f\\n", secs(w0, w1), secs(c0, c1));
  return 0;
}
`);
const loop = join(dir, 'loop');
execFileSync('cc', ['-O2', '-pthread', '-o', loop, join(dir, 'loop.c')]);

const libc = execFileSync('sh', ['-c', "ldd /bin/true | awk '/libc.so/ {print $3}'"], { encoding: 'utf8' }).trim();
const FUNCS = ['malloc', 'calloc', 'realloc', 'reallocarray', 'free', 'posix_memalign', 'aligned_alloc', 'memalign'];

/** run_time_ns and run_cnt of the loaded programs whose name `pick` accepts. */
function progStats(pick) {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  let ns = 0;
  let cnt = 0;
  for (const p of progs) {
    if (!pick(p.name ?? '')) continue;
    ns += p.run_time_ns ?? 0;
    cnt += p.run_cnt ?? 0;
  }
  return { ns, cnt };
}

const bpfNs = {}; // `${case}/${threads}` -> best ns per BPF program run

/** One run of the loop on `threads` threads; `tracer(pid)` gives argv, a regex telling that it is attached, and its programs' names. */
async function once(key, threads, tracer) {
  const prog = spawn(loop, [String(threads), String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  prog.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const progDone = new Promise((resolve) => prog.on('close', resolve));
  if (tracer) {
    const { argv, ready, progs } = tracer(prog.pid);
    const tr = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    tr.stdout.setEncoding('utf8').on('data', (d) => (text += d));
    tr.stderr.setEncoding('utf8').on('data', (d) => (text += d));
    const trDone = new Promise((resolve) => tr.on('close', resolve));
    const start = Date.now();
    while (!ready.test(text)) {
      if (tr.exitCode !== null || Date.now() - start > 30000) {
        prog.kill();
        throw new Error(`${argv.join(' ')} did not attach:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = progStats(progs);
    prog.stdin.end('g');
    await progDone;
    const after = progStats(progs);
    bpfNs[key] = Math.min(bpfNs[key] ?? Infinity, (after.ns - before.ns) / Math.max(1, after.cnt - before.cnt));
    tr.kill('SIGINT');
    await trDone;
    if (tr.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${tr.exitCode}:\n${text}`);
  } else {
    prog.stdin.end('g');
    await progDone;
  }
  const [wall, cpu] = out.trim().split(' ').map(Number);
  if (!(wall > 0 && cpu > 0)) throw new Error(`no time from the loop: '${out}'`);
  return { wall, cpu };
}

const ours = (n) => n.startsWith('ms_');
const bpftraceProbes = FUNCS.map((f) => `uprobe:${libc}:${f}`).join(',');
const allCases = [
  ['plain', undefined],
  ['mallocstat', (pid) => ({ argv: [process.execPath, rbtrace, 'mallocstat', '-v', '-p', String(pid)], ready: /probes attached, tracing/, progs: ours })],
  ['mallocstat --leaks', (pid) => ({ argv: [process.execPath, rbtrace, 'mallocstat', '--leaks', '-v', '-p', String(pid)], ready: /probes attached, tracing/, progs: ours })],
  ['bpftrace count', (pid) => ({
    // BEGIN runs once every probe is attached ("Attaching N probes" comes before).
    argv: ['bpftrace', '-p', String(pid), '-e', `BEGIN { printf("READY\\n"); } ${bpftraceProbes} { @ = count(); }`],
    ready: /READY/,
    progs: (n) => FUNCS.includes(n),
  })],
];
// BENCH_CASES=plain,mallocstat,...: a subset (plain and bpftrace count are always kept: the baselines).
const only = process.env.BENCH_CASES?.split(',');
const cases = allCases.filter(([name]) => !only || only.includes(name) || name === 'plain' || name === 'bpftrace count');

const statsWas = execFileSync('sysctl', ['-n', 'kernel.bpf_stats_enabled'], { encoding: 'utf8' }).trim();
execFileSync('sysctl', ['-qw', 'kernel.bpf_stats_enabled=1']);
process.on('exit', () => execFileSync('sysctl', ['-qw', `kernel.bpf_stats_enabled=${statsWas}`]));
console.log(`mallocstat bench: ${N} x malloc(32)/free = ${2 * N} probed calls split over ${THREADS.join(', ')} threads, best of ${R}`);
const results = {}; // `${case}/${threads}` -> { wall, cpu } (each the best of its rounds)
for (let i = 0; i < R; i++) {
  for (const threads of THREADS) {
    for (const [name, tracer] of cases) {
      const key = `${name}/${threads}`;
      const t = await once(key, threads, tracer);
      const best = results[key] ?? { wall: Infinity, cpu: Infinity };
      results[key] = { wall: Math.min(best.wall, t.wall), cpu: Math.min(best.cpu, t.cpu) };
    }
  }
}
const ms = (s) => `${(s * 1000).toFixed(1).padStart(7)} ms`;
for (const threads of THREADS) {
  const plain = results[`plain/${threads}`];
  const bt = results[`bpftrace count/${threads}`];
  console.log(`\n${threads} thread${threads > 1 ? 's' : ''} (${N / threads | 0} iterations each)`);
  console.log(`${''.padEnd(20)} ${'CPU'.padStart(10)} ${'wall'.padStart(10)}  ns/call  CPU vs bpftrace  wall vs bpftrace  CPU vs plain  BPF ns/run`);
  for (const [name] of cases) {
    const r = results[`${name}/${threads}`];
    let line = `${name.padEnd(20)} ${ms(r.cpu)} ${ms(r.wall)}`;
    if (name !== 'plain') {
      const per = ((r.cpu - plain.cpu) / (2 * N)) * 1e9;
      line += `  ${per.toFixed(0).padStart(7)}  ${(r.cpu / bt.cpu).toFixed(2).padStart(14)}x  ${(r.wall / bt.wall).toFixed(2).padStart(15)}x` +
        `  ${(r.cpu / plain.cpu).toFixed(1).padStart(11)}x  ${bpfNs[`${name}/${threads}`].toFixed(0).padStart(10)}`;
    }
    console.log(line);
  }
  const count = results[`mallocstat/${threads}`];
  const leaks = results[`mallocstat --leaks/${threads}`];
  if (count && leaks) console.log(`--leaks vs count mode: CPU ${(leaks.cpu / count.cpu).toFixed(2)}x, wall ${(leaks.wall / count.wall).toFixed(2)}x (target <= 1.5x)`);
}
