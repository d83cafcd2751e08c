// Independent oracles for rbtrace's figures, built or run by the tests
// themselves: a counting LD_PRELOAD shim for the allocator, strace's
// -c table and its execve log. Nothing here uses BPF, so a bug in rbtrace's
// BPF side cannot hide in its oracle.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The allocator functions mallocstat counts, as the shim names them. */
export const SHIM_FUNCS = ['malloc', 'calloc', 'realloc', 'reallocarray', 'free', 'posix_memalign', 'aligned_alloc', 'memalign'] as const;
/** Also counted: realloc/reallocarray calls with a NULL pointer (glibc runs malloc for them). */
export type AllocCounts = Record<(typeof SHIM_FUNCS)[number] | 'realloc_null', number>;

// Every function counts itself and forwards to glibc's own entry points
// (__libc_malloc...: exported, and at the same addresses as malloc... so no
// dlsym bootstrap, which itself allocates). glibc calls malloc through the
// PLT from inside libc (strdup, fopen...) to honour interposition, so the
// shim sees exactly the calls a uprobe on libc's malloc sees. Counts go to
// a new file $RBTRACE_SHIM_OUT/<pid>.<n> at exit, _exit and before an execve
// (a shell's forked child allocates before it execs; dash calls execve and
// _exit itself). Not seen: calls of a process killed by a signal, or that
// execs or _exits from inside libc (execvp, exit's own _exit come after the
// destructor).
const SHIM_SOURCE = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/syscall.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
enum { MALLOC, CALLOC, REALLOC, REALLOCARRAY, FREE, POSIX_MEMALIGN, ALIGNED_ALLOC, MEMALIGN, REALLOC_NULL, N };
static const char *names[N] = { "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc", "memalign", "realloc_null" };
static unsigned long counts[N];
#define COUNT(f) __atomic_fetch_add(&counts[f], 1, __ATOMIC_RELAXED)
void *malloc(size_t n) { COUNT(MALLOC); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { COUNT(CALLOC); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { COUNT(REALLOC); if (!p) COUNT(REALLOC_NULL); return __libc_realloc(p, n); }
void *reallocarray(void *p, size_t a, size_t b) {
  size_t n;
  COUNT(REALLOCARRAY);
  if (!p) COUNT(REALLOC_NULL);
  if (__builtin_mul_overflow(a, b, &n)) { errno = ENOMEM; return NULL; }
  return __libc_realloc(p, n);
}
void free(void *p) { COUNT(FREE); __libc_free(p); }
int posix_memalign(void **out, size_t al, size_t n) {
  COUNT(POSIX_MEMALIGN);
  if (al % sizeof(void *) || (al & (al - 1))) return EINVAL;
  void *p = __libc_memalign(al, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void *aligned_alloc(size_t al, size_t n) { COUNT(ALIGNED_ALLOC); return __libc_memalign(al, n); }
void *memalign(size_t al, size_t n) { COUNT(MEMALIGN); return __libc_memalign(al, n); }
__attribute__((destructor)) static void report(void) {
  const char *dir = getenv("RBTRACE_SHIM_OUT");
  char path[4096], buf[1024];
  int len = 0, fd = -1;
  if (!dir) return;
  for (int i = 0; i < N; i++) len += snprintf(buf + len, sizeof(buf) - len, "%s %lu\\n", names[i], counts[i]);
  for (int n = 0; fd < 0 && n < 1000; n++) { /* pid.0, then pid.1 after an exec... */
    snprintf(path, sizeof(path), "%s/%d.%d", dir, (int)getpid(), n);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  }
  if (fd >= 0) { if (write(fd, buf, len) < 0) {} close(fd); }
  memset(counts, 0, sizeof(counts));
}
/* dash ends with _exit(), which runs no destructor. */
void _exit(int status) {
  report();
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}
/* A forked child starts with its parent's counts: they are the parent's. */
static void reset(void) { memset(counts, 0, sizeof(counts)); }
__attribute__((constructor)) static void init(void) { pthread_atfork(NULL, NULL, reset); }
int execve(const char *path, char *const argv[], char *const envp[]) {
  report();
  return syscall(SYS_execve, path, argv, envp);
}
`;

let shimPath: string | undefined;

/** Build the shim once per test process. */
export function buildShim(): string {
  if (shimPath) return shimPath;
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-shim-'));
  writeFileSync(join(dir, 'shim.c'), SHIM_SOURCE);
  const out = join(dir, 'libcountalloc.so');
  execFileSync('cc', ['-O1', '-shared', '-fPIC', '-o', out, join(dir, 'shim.c')], { stdio: 'pipe' });
  shimPath = out;
  return out;
}

export interface ShimRun {
  /** Summed over every process of the run that exited normally. */
  total: AllocCounts;
  /** Per pid. */
  perPid: Map<number, AllocCounts>;
  status: number | null;
}

/**
 * Run argv with the shim preloaded, stdout as a pipe (as under rbtrace in the
 * tests), and return the counts every process wrote at its exit.
 */
export async function runWithShim(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string } = {}): Promise<ShimRun> {
  const out = mkdtempSync(join(tmpdir(), 'rbtrace-shim-out-'));
  const status = await runPiped(argv, { ...opts, env: { ...process.env, ...opts.env, ...shimEnv(out) } });
  const perPid = new Map<number, AllocCounts>();
  const total = zeroCounts();
  for (const f of readdirSync(out)) {
    const pid = Number(f.split('.')[0]);
    const c = perPid.get(pid) ?? zeroCounts();
    for (const line of readFileSync(join(out, f), 'utf8').trim().split('\n')) {
      const [name, n] = line.split(' ');
      c[name as keyof AllocCounts] += Number(n);
      total[name as keyof AllocCounts] += Number(n);
    }
    perPid.set(pid, c);
  }
  return { total, perPid, status };
}

function shimEnv(out: string): NodeJS.ProcessEnv {
  return { LD_PRELOAD: buildShim(), RBTRACE_SHIM_OUT: out };
}

/**
 * An environment of the same size as a shim run's, without the shim, for
 * the run the shim is compared with: perl, python and the shells copy their
 * environment into their own structures, so two more variables are a few
 * more mallocs (about 10 in perl). Same names' lengths, same values.
 */
export function shimLikeEnv(): NodeJS.ProcessEnv {
  const env = shimEnv(mkdtempSync(join(tmpdir(), 'rbtrace-shim-out-')));
  return { LD_NOTLOAD: env.LD_PRELOAD, RBTRACE_SHIM_OUT: '/nonexistent/' + env.RBTRACE_SHIM_OUT!.slice(13) };
}

export function zeroCounts(): AllocCounts {
  return Object.fromEntries([...SHIM_FUNCS, 'realloc_null'].map((f) => [f, 0])) as AllocCounts;
}

/** Run a command with stdout and stderr as pipes (drained), stdin from a string or /dev/null. */
export function runPiped(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string } = {}): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: opts.env ?? process.env, cwd: opts.cwd, stdio: [opts.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    child.stdout!.resume();
    child.stderr!.resume();
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
}

/** strace -c -f's table: calls and errors per syscall name. */
export interface StraceCounts {
  calls: Map<string, number>;
  errors: Map<string, number>;
}

/** Run argv under `strace -c -f` (stdout a pipe) and parse its table. */
export async function straceCount(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<StraceCounts> {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-strace-'));
  const log = join(dir, 'count');
  await runPiped(['strace', '-c', '-f', '-o', log, ...argv], opts);
  const calls = new Map<string, number>();
  const errors = new Map<string, number>();
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    // "% time seconds usecs/call calls [errors] syscall"
    const m = line.trim().match(/^[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)$/);
    if (!m || m[3] === 'total') continue;
    calls.set(m[3], Number(m[1]));
    errors.set(m[3], Number(m[2] ?? 0));
  }
  return { calls, errors };
}

/** One successful exec from strace's log: the file and argv as passed, exact bytes. */
export interface StraceExec {
  pid: number;
  filename: Buffer;
  args: Buffer[];
}

/** Decode a string strace printed with -xx ("\x2f\x62..."), exactly. */
function unhex(s: string): Buffer {
  return Buffer.from(s.replace(/\\x/g, ''), 'hex');
}

/**
 * Run argv under `strace -f -ff -xx -s 65536 -e trace=execve,execveat` and
 * return its successful execs in order of pid file, then time. -ff writes one
 * file per process, so no call is split across lines; -xx prints every byte
 * of every string as \xNN, so the bytes are exact.
 */
export async function straceExecs(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<StraceExec[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-strace-'));
  const prefix = join(dir, 'x');
  await runPiped(['strace', '-f', '-ff', '-xx', '-s', '65536', '-e', 'trace=execve,execveat', '-o', prefix, ...argv], opts);
  const execs: StraceExec[] = [];
  for (const f of readdirSync(dir)) {
    const pid = Number(f.split('.')[1]);
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      // execve("\x..", ["\x..", ...], 0x... /* N vars */) = 0
      // execveat(3, "\x..", ["\x.."], 0x..., AT_EMPTY_PATH) = 0
      const m = line.match(/^(execve|execveat)\((?:\d+, )?"((?:\\x[0-9a-f]{2})*)", \[((?:"(?:\\x[0-9a-f]{2})*"(?:, )?)*)\].* = 0$/);
      if (!m) continue;
      const args = [...m[3].matchAll(/"((?:\\x[0-9a-f]{2})*)"/g)].map((a) => unhex(a[1]));
      execs.push({ pid, filename: unhex(m[2]), args });
    }
  }
  return execs;
}

/** Per-syscall counts from an rbtrace syscount --json report. */
export function syscountMap(report: { syscalls?: { name: string; count: number; errors: number }[] }): StraceCounts {
  const calls = new Map<string, number>();
  const errors = new Map<string, number>();
  for (const s of report.syscalls ?? []) {
    calls.set(s.name, s.count);
    errors.set(s.name, s.errors);
  }
  return { calls, errors };
}
