// The loop bench/uprobe.sh and bench/strlat-unwind.sh trace: calls work()
// N times from two frames below main (level1 -> level2), spinning SPIN
// iterations between calls, and prints the ns per call: wall time, or with
// "cpu" as third argument the process's CPU time (the probes' BPF programs
// run in the traced thread and count there; other load counts less).
// Usage: call-loop N [SPIN [cpu]]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
volatile long sink;
__attribute__((noinline)) long work(long x) { sink += x; return x; }
__attribute__((noinline)) void spin(long n) { for (long i = 0; i < n; i++) sink += i; }
__attribute__((noinline)) void level2(long n, long s) { for (long i = 0; i < n; i++) { work(i); if (s) spin(s); } }
__attribute__((noinline)) void level1(long n, long s) { level2(n, s); sink++; }
int main(int argc, char **argv) {
  long n = atol(argv[1]), s = argc > 2 ? atol(argv[2]) : 0;
  clockid_t clock = argc > 3 && !strcmp(argv[3], "cpu") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
  struct timespec a, b;
  clock_gettime(clock, &a);
  level1(n, s);
  clock_gettime(clock, &b);
  printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
  return 0;
}
