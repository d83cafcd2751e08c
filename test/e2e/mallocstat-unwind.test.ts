// mallocstat --leaks --unwind dwarf (issue 28): blocks not freed, by the
// stack that allocated them, through code without frame pointers. The copy
// of each allocation's stack is walked at once in user space; frees stay in
// BPF. Checked against the program's own count of the blocks it keeps and
// against --unwind fp on the same program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildC, REPORT_ON_STDOUT, runRbtrace, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['ms_malloc', 'ms_free', 'ms_return', 'ms_exit', 'ms_exec'];

// -O2 -fomit-frame-pointer: no frame pointers in the program, so the
// kernel's walk from malloc's return cannot reach main. It keeps A blocks of
// 64 bytes from leak_a and B of 128 from leak_b, frees everything churn
// allocates, and prints how many blocks each kept (the oracle). It then
// sleeps: the stack copies are walked with the process's mappings, read when
// the first copy arrives, which must be before it exits.
const LEAK_C = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
void *keep[1000];
int na, nb;
__attribute__((noinline)) void leak_a(int n) { for (int i = 0; i < n; i++) if ((keep[na + nb] = malloc(64))) na++; }
__attribute__((noinline)) void leak_b(int n) { for (int i = 0; i < n; i++) if ((keep[na + nb] = malloc(128))) nb++; }
__attribute__((noinline)) void churn(int n) { for (int i = 0; i < n; i++) free(malloc(32 + i % 64)); }
int main(void) {
  leak_a(100); churn(1000); leak_b(50);
  printf("a=%d b=%d\\n", na, nb);
  fflush(stdout);
  usleep(300000);
  return 0;
}
`;

interface Frame { function: string; module?: string }
interface Group { stack: Frame[]; truncated?: boolean; count: number; bytes: number }
interface Run { groups: Group[]; leaked: { count: number; bytes: number; lost_stacks: number }; a: number; b: number }

async function leaks(bin: string, unwind: 'fp' | 'dwarf'): Promise<Run> {
  const r = await runRbtrace(['mallocstat', ...REPORT_ON_STDOUT, '--json', '--leaks', '--unwind', unwind, '--', bin], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const oracle = r.stdout.match(/^a=(\d+) b=(\d+)$/m);
  assert.ok(oracle, r.stdout);
  const rec = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { leaks?: Group[]; leaked: Run['leaked'] }).filter((x) => x.leaks).at(-1);
  assert.ok(rec, r.stdout);
  return { groups: rec.leaks!, leaked: rec.leaked, a: Number(oracle[1]), b: Number(oracle[2]) };
}

const reachesMain = (g: Group) => !g.truncated && g.stack.some((f) => f.function === 'main') && g.stack.some((f) => f.function === '__libc_start_call_main');
const from = (run: Run, fn: string) => run.groups.filter((g) => g.stack[0]?.function === fn);
const sum = (gs: Group[], k: 'count' | 'bytes') => gs.reduce((n, g) => n + g[k], 0);

test('a program without frame pointers: --leaks --unwind dwarf names every kept block\'s stack down to main, counts equal the program\'s and fp\'s', async () => {
  const bin = buildC(LEAK_C, 'leak-nofp', ['-O2', '-fomit-frame-pointer']);
  const dwarf = await leaks(bin, 'dwarf');
  const fp = await leaks(bin, 'fp');
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  assert.equal(dwarf.a, 100);
  assert.equal(dwarf.b, 50);
  // Exact: every block leak_a/leak_b kept, in one group each, under main.
  for (const [fn, n, size] of [['leak_a', dwarf.a, 64], ['leak_b', dwarf.b, 128]] as const) {
    const gs = from(dwarf, fn);
    assert.equal(gs.length, 1, `${fn}: ${JSON.stringify(gs)}`);
    assert.equal(gs[0].count, n);
    assert.equal(gs[0].bytes, n * size);
    assert.ok(reachesMain(gs[0]), `${fn}: ${JSON.stringify(gs[0])}`);
    // The walk goes leak_* -> main (the caller's frame the CFI recovers).
    assert.equal(gs[0].stack[1]?.function, 'main', JSON.stringify(gs[0].stack));
    // fp: the same blocks counted (the BPF live map is the same), their stacks cut short.
    const fgs = from(fp, fn);
    assert.equal(sum(fgs, 'count'), n, `${fn} (fp): ${JSON.stringify(fgs)}`);
    assert.ok(sum(fgs.filter(reachesMain), 'count') < 0.5 * n, `${fn} (fp) reaches main: ${JSON.stringify(fgs)}`);
  }
  // Every block not freed (the program's, and libc's stdout buffer from printf) reaches main.
  assert.equal(dwarf.leaked.lost_stacks, 0);
  assert.ok(sum(dwarf.groups.filter(reachesMain), 'count') >= 0.95 * dwarf.leaked.count, JSON.stringify(dwarf.groups));
  assert.equal(dwarf.leaked.count, fp.leaked.count);
  assert.equal(dwarf.leaked.bytes, fp.leaked.bytes);
});

test('--unwind dwarf without --leaks: one line, exit 2', async () => {
  const r = await runRbtrace(['mallocstat', '--unwind', 'dwarf', '-d', '1']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--unwind dwarf needs --leaks/);
});
