/* The program behind docs/flamegraph.svg (README, "Flame graphs"):
 *   clang -O2 -fno-omit-frame-pointer -fno-optimize-sibling-calls -o demo flamegraph-demo.c
 *   sudo rbtrace profile -F 199 --svg docs/flamegraph.svg -- ./demo 5 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static char buf[1 << 16];
__attribute__((noinline)) unsigned hash_block(const char *p, size_t n) { unsigned h = 2166136261u; for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u; return h; }
__attribute__((noinline)) unsigned checksum(void) { unsigned h = 0; for (int i = 0; i < 2; i++) h += hash_block(buf, sizeof buf); return h; }
__attribute__((noinline)) void fill(unsigned seed) { for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(seed * 31 + i); }
static unsigned lcg = 1;
__attribute__((noinline)) int next_random(void) { lcg = lcg * 1103515245u + 12345u; return (int)(lcg >> 1); }
__attribute__((noinline)) void quicksort(int *v, int n) {
	if (n < 2) return;
	int p = v[n / 2], i = 0, j = n - 1;
	while (i <= j) { while (v[i] < p) i++; while (v[j] > p) j--; if (i <= j) { int t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; } }
	quicksort(v, j + 1); quicksort(v + i, n - i);
}
__attribute__((noinline)) void sort_records(void) { static int v[3000]; for (int i = 0; i < 3000; i++) v[i] = next_random(); quicksort(v, 3000); }
__attribute__((noinline)) void flush_output(int fd) { lseek(fd, 0, SEEK_SET); for (int i = 0; i < 4; i++) write(fd, buf, sizeof buf); }
__attribute__((noinline)) void process_batch(int fd, unsigned seed) { fill(seed); checksum(); sort_records(); flush_output(fd); }
int main(int argc, char **argv) {
	double secs = argc > 1 ? atof(argv[1]) : 3;
	int fd = open("/tmp/rbtrace-demo.out", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned seed = 0;; seed++) {
		process_batch(fd, seed);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 >= secs) break;
	}
	return 0;
}
