// The C program the profile tests sample: hot(NH) through caller(), then
// cold(NC), in a loop for SECS seconds (`PROG SECS [NH NC]`, default NH
// 270000 and NC 30000: ~90 % of the work in hot()). Each turn is ~0.3 ms,
// scaled by a pseudo-random 0.5 to 1.5, so that 99 Hz samples fall anywhere
// in one: with a fixed ~10 ms turn (the 10.1 ms sampling period) samples
// kept one phase of the loop, and a CI machine's run gave cold() 5 of 298
// samples where it had 13 % of the CPU time. At the end, on stderr, the
// thread CPU time the program measured in each (CLOCK_THREAD_CPUTIME_ID
// around each call) and in all: `cpu hot H cold C all A`.
//
// Built by clang with frame pointers: gcc 12 leaves them out of leaf
// functions even with -fno-omit-frame-pointer, which hides a leaf's caller
// from any frame-pointer unwinder, perf's included.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const HOT_COLD_C = `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
__attribute__((noinline)) unsigned long hot(unsigned long n) {
  unsigned long s = 0;
  for (unsigned long i = 0; i < n; i++) { s = s * 31 + i; __asm__ volatile("" : "+r"(s)); }
  return s;
}
__attribute__((noinline)) unsigned long cold(unsigned long n) {
  unsigned long s = 0;
  for (unsigned long i = 0; i < n; i++) { s = s * 7 + i; __asm__ volatile("" : "+r"(s)); }
  return s;
}
__attribute__((noinline)) unsigned long caller(unsigned long n) { return hot(n) + 1; }
int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2;
  unsigned long nh = argc > 3 ? strtoul(argv[2], 0, 10) : 270000, nc = argc > 3 ? strtoul(argv[3], 0, 10) : 30000;
  double th = 0, tc = 0, t0, start = cpu();
  unsigned long s = 0, r = 1, f;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do {
    r = r * 6364136223846793005UL + 1442695040888963407UL;
    f = 512 + (r >> 33) % 1024;
    t0 = cpu(); s += caller(nh * f / 1024); th += cpu() - t0;
    t0 = cpu(); s += cold(nc * f / 1024); tc += cpu() - t0;
    clock_gettime(CLOCK_MONOTONIC, &b);
  } while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
  fprintf(stderr, "cpu hot %.6f cold %.6f all %.6f (%lu)\\n", th, tc, cpu() - start, s);
  return 0;
}
`;

/** Build the program into `dir` as `name` (its comm); returns its path. */
export function buildHotCold(dir: string, name: string): string {
  const src = join(dir, `${name}.c`);
  const bin = join(dir, name);
  writeFileSync(src, HOT_COLD_C);
  execFileSync('clang', ['-O2', '-fno-omit-frame-pointer', '-o', bin, src], { stdio: 'pipe' });
  return bin;
}
