// --save, rbtrace diff, --assert and --baseline end to end, on real runs of a
// C program whose allocator calls and sleeps we choose (so the expected
// figures are known exactly), of Debian's ruby, and of the whole system.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { ROOT, buildC, runRbtrace, settledLeftovers } from '../helpers.js';
import { EXIT_ASSERT } from '../../src/core/report/run.js';

const PROG = `
#include <stdlib.h>
#include <unistd.h>
void *volatile sink; /* volatile: the compiler may not drop an allocation */
__attribute__((noinline)) void nap(int us) { usleep(us); }
int main(int argc, char **argv) {
  int loops = atoi(argv[1]);
  for (int l = 0; l < loops; l++) {
    sink = malloc(100);
    sink = realloc(sink, 5000);
    free(sink);
  }
  int naps = argc > 2 ? atoi(argv[2]) : 0, us = argc > 3 ? atoi(argv[3]) : 0;
  for (int i = 0; i < naps; i++) nap(us);
  return argc > 4 ? atoi(argv[4]) : 0;
}
`;
const prog = buildC(PROG, 'diffprog');
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-diff-'));
const file = (name: string) => join(dir, name);

interface Field { field: string; before: number; after: number; change: number; change_pct: number | null }
interface DiffRow { label: string; presence: string; changed: boolean; fields: Field[]; histograms: { field: string; verdict: string; before_n: number; after_n: number; p_value: number | null; cliffs_delta: number | null; buckets: { low: number; before: number; after: number }[] }[] }

async function save(name: string, args: string[]): Promise<void> {
  const r = await runRbtrace([...args.slice(0, 1), '--save', file(name), ...args.slice(1)]);
  assert.equal(r.code, 0, r.stderr);
}

async function diffJson(a: string, b: string): Promise<DiffRow[]> {
  const r = await runRbtrace(['diff', '--json', file(a), file(b)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.format, 'rbtrace-diff');
  return doc.rows;
}

const fieldOf = (rows: DiffRow[], label: string, field: string) => rows.find((r) => r.label === label)?.fields.find((f) => f.field === field);

test('mallocstat: two runs with known call counts, diffed exactly', async () => {
  await save('m100.json', ['mallocstat', '--', prog, '100']);
  await save('m300.json', ['mallocstat', '--', prog, '300']);
  const doc = JSON.parse(readFileSync(file('m100.json'), 'utf8'));
  assert.equal(doc.format, 'rbtrace-run');
  assert.equal(doc.version, 1);
  assert.equal(doc.tool, 'mallocstat');
  assert.deepEqual(doc.command, [prog, '100']);
  assert.equal(doc.exit_status, 0);
  assert.match(doc.kernel, /^\d+\.\d+/);

  const rows = await diffJson('m100.json', 'm300.json');
  // The same start-up in both runs: the differences are the 200 extra loops, exactly.
  for (const fn of ['malloc', 'realloc', 'free']) {
    const f = fieldOf(rows, fn, 'count')!;
    assert.equal(f.change, 200, `${fn}: ${JSON.stringify(f)}`);
    assert.equal(f.change_pct, (200 / f.before) * 100);
  }
  assert.equal(fieldOf(rows, 'malloc', 'bytes')!.change, 200 * 100);
  assert.equal(fieldOf(rows, 'calloc', 'count')?.change ?? 0, 0);
  assert.equal(fieldOf(rows, 'realloc', 'bytes')!.change, 200 * 5000);

  const text = await runRbtrace(['diff', file('m100.json'), file('m300.json')]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^rbtrace mallocstat: before .*m100\.json: .*diffprog 100$/m);
  assert.match(text.stdout, /^FUNCTION\s+FIGURE\s+BEFORE\s+AFTER\s+CHANGE\s+%$/m);
  assert.match(text.stdout, /^realloc\s+count\s+\d+\s+\d+\s+\+200\s+\+\d+\.\d%$/m);
});

test('strlat: 1 ms against 4 ms naps, drawn on one log2 scale and judged slower; 1.5 ms twice is no change', async () => {
  const args = (us: number) => ['strlat', '--lib', prog, '--func', 'nap', '--', prog, '0', '60', String(us)];
  await save('nap1.json', args(1000));
  await save('nap4.json', args(4000));
  // For "no change": 1.5 ms, mid-bucket ([1.05, 2.1) ms), so that timer slack cannot tip
  // samples over a bucket boundary in one run and not in the other.
  await save('nap15a.json', args(1500));
  await save('nap15b.json', args(1500));
  const rows = await diffJson('nap1.json', 'nap4.json');
  const h = rows[0].histograms.find((x) => x.field === 'hist')!;
  assert.equal(rows[0].label, '');
  assert.deepEqual([h.before_n, h.after_n], [60, 60]);
  assert.equal(h.verdict, 'higher');
  assert.ok(h.p_value! < 0.001 && h.cliffs_delta! > 0.9, JSON.stringify(h));
  // usleep(1000) takes a bit over 1 ms: [0.52, 1.05) or [1.05, 2.1) ms; 4 ms: [2.1, 4.2) or, on a busy machine, [4.2, 8.4).
  const mode = (side: 'before' | 'after') => h.buckets.reduce((m, b) => (b[side] > m[side] ? b : m)).low;
  assert.ok([524288, 1048576].includes(mode('before')), JSON.stringify(h.buckets));
  assert.ok(mode('after') >= 2097152, JSON.stringify(h.buckets));

  const text = await runRbtrace(['diff', file('nap1.json'), file('nap4.json')]);
  assert.match(text.stdout, /^hist \(ns\): before 60, after 60 samples: shifted higher \(slower\): Mann-Whitney p /m);
  assert.match(text.stdout, /^\s+(524288 -> 1048575|1048576 -> 2097151)\s+:\s+\d+\s+0\s+\|\*+\s*\|\s+\|$/m);
  // p50, not p99: one 1 ms nap that overslept past 2 ms under load puts the
  // before side's p99 in the after side's bucket (seen in CI: p99 unchanged).
  assert.match(text.stdout, /^\s+p50\s+.*\+\d+\.\d%$/m);

  const same = (await diffJson('nap15a.json', 'nap15b.json'))[0].histograms[0];
  assert.equal(same.verdict, 'no-change', JSON.stringify(same));
});

test('--assert: pass 0, fail 3 naming the figure, -- CMD failures keep their status', async () => {
  const ok = await runRbtrace(['mallocstat', '--assert', 'realloc.count >= 100', '--assert', 'free.count > 0 and calloc.count == 0', '--', prog, '100']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr.split('\n').filter((l) => /assertion/.test(l)).length, 0);

  const bad = await runRbtrace(['mallocstat', '--assert', 'realloc.count <= 40', '--assert', 'total.count > 0', '--', prog, '100']);
  assert.equal(bad.code, EXIT_ASSERT, bad.stderr);
  assert.equal(EXIT_ASSERT, 3);
  assert.match(bad.stderr, /^rbtrace mallocstat: assertion failed: realloc\.count <= 40 \(realloc\.count = 1\d\d\)$/m);
  assert.doesNotMatch(bad.stderr, /total\.count/);

  // The command fails (status 7): that, not the assertions, is the status: broken beats regressed.
  const cmdFails = await runRbtrace(['mallocstat', '--assert', 'realloc.count <= 40', '--', prog, '100', '0', '0', '7']);
  assert.equal(cmdFails.code, 7, cmdFails.stderr);
  assert.match(cmdFails.stderr, /assertion failed: realloc\.count <= 40/);
  const cmdFailsAssertOk = await runRbtrace(['mallocstat', '--assert', 'realloc.count >= 100', '--', prog, '100', '0', '0', '7']);
  assert.equal(cmdFailsAssertOk.code, 7);
  // A command exiting 3 would look like a failed assertion: it is reported as 1.
  const three = await runRbtrace(['mallocstat', '--assert', 'realloc.count >= 100', '--', prog, '100', '0', '0', '3']);
  assert.equal(three.code, 1);
  assert.match(three.stderr, /the command exited with status 3, the status of failed assertions: exiting with 1 instead/);

  const lat = await runRbtrace(['strlat', '--lib', prog, '--func', 'nap', '--assert', 'p99 < 2ms', '--', prog, '0', '30', '4000']);
  assert.equal(lat.code, EXIT_ASSERT, lat.stderr);
  assert.match(lat.stderr, /assertion failed: p99 < 2ms \(p99 = [\d,]+ ns \([\d.]+ ms\)\)/);
});

test('bad expressions and names: one line, exit 2, nothing loaded', async () => {
  for (const [expr, re] of [
    ['realloc.count <== 3', /^rbtrace mallocstat: --assert 'realloc.count <== 3': unexpected '=' .*at column 17 \(see ASSERTIONS in man rbtrace\)$/],
    ['p99 < 2', /^rbtrace strlat: --assert 'p99 < 2': p99 is a duration: give 2 a unit/],
    ['realloc.cnt < 3', /^rbtrace mallocstat: --assert: 'cnt' in 'realloc.cnt' is not a figure of a function \(mallocstat's figures: .*ROW\.count/],
  ] as const) {
    const tool = expr.startsWith('p99') ? 'strlat' : 'mallocstat';
    const r = await runRbtrace([tool, '-v', '--assert', expr, '--', prog, '1']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), re);
  }
  const r = await runRbtrace(['mallocstat', '--max-regression', '5', '--', prog, '1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^rbtrace mallocstat: --max-regression is for --baseline \(add --baseline FILE\)\n$/);
});

test('--baseline: the same run passes, more reallocs than allowed fail with 3', async () => {
  const same = await runRbtrace(['mallocstat', '--baseline', file('m100.json'), '--', prog, '100']);
  assert.equal(same.code, 0, same.stderr);
  const worse = await runRbtrace(['mallocstat', '--baseline', file('m100.json'), '--max-regression', '10', '--', prog, '300']);
  assert.equal(worse.code, EXIT_ASSERT, worse.stderr);
  assert.match(worse.stderr, /^rbtrace mallocstat: regression: realloc\.count 1\d\d -> 3\d\d \(\+\d+\.\d%; at most \+10% allowed\)$/m);
  const slower = await runRbtrace(['strlat', '--lib', prog, '--func', 'nap', '--baseline', file('nap1.json'), '--max-regression', '50', '--', prog, '0', '60', '4000']);
  assert.equal(slower.code, EXIT_ASSERT, slower.stderr);
  assert.match(slower.stderr, /regression: p50 .* -> .* \(\+\d+\.\d%; at most \+50% allowed\)/);
  const wrongTool = await runRbtrace(['syscount', '--baseline', file('m100.json'), '--', prog, '1']);
  assert.equal(wrongTool.code, 2);
  assert.match(wrongTool.stderr, /^rbtrace syscount: --baseline: .*m100\.json is a saved mallocstat run, not syscount/);
});

test('--save from every tracing tool is read by rbtrace diff; other files and mixed tools refused', async () => {
  await save('sc1.json', ['syscount', '--', prog, '10']);
  await save('sc2.json', ['syscount', '--', prog, '10', '3', '1000']);
  const sc = await diffJson('sc1.json', 'sc2.json');
  // 3 naps: 3 more clock_nanosleep calls, exactly.
  assert.equal(fieldOf(sc, 'clock_nanosleep', 'count')!.change, 3);
  await save('ex.json', ['execsnoop', '--', 'sh', '-c', `${prog} 1; ${prog} 1; true`]);
  const ex = JSON.parse(readFileSync(file('ex.json'), 'utf8'));
  assert.deepEqual(ex.figures.execs.find((r: { comm: string }) => r.comm === 'diffprog')?.count, 2);
  await save('gc.json', ['gcstat', '--', 'ruby', '--disable-gems', '-e', '5.times { GC.start }']);
  const gc = JSON.parse(readFileSync(file('gc.json'), 'utf8'));
  assert.ok(gc.figures.phases.find((r: { phase: string }) => r.phase === 'mark').count >= 5);
  // One listener of our own (--port: the machine may hold thousands of others).
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await save('sq.json', ['synqueue', '--port', String((server.address() as AddressInfo).port), '-d', '0.5']);
  } finally {
    server.close();
  }
  const sq = JSON.parse(readFileSync(file('sq.json'), 'utf8'));
  assert.deepEqual(sq.figures.listeners.map((l: { addr: string }) => l.addr), ['127.0.0.1']);
  for (const f of ['m100.json', 'nap1.json', 'sc1.json', 'ex.json', 'gc.json', 'sq.json']) {
    const r = await runRbtrace(['diff', file(f), file(f)]);
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    assert.match(r.stdout, /^rbtrace \w+: before /);
  }

  const mixed = await runRbtrace(['diff', file('m100.json'), file('sc1.json')]);
  assert.equal(mixed.code, 2);
  assert.match(mixed.stderr, /^rbtrace diff: .*m100\.json is a mallocstat run, .*sc1\.json a syscount run \(compare two runs of one tool\)\n$/);
  const nd = await runRbtrace(['mallocstat', '--json', '-o', file('ndjson.json'), '--', prog, '1']);
  assert.equal(nd.code, 0, nd.stderr);
  const notSave = await runRbtrace(['diff', file('ndjson.json'), file('m100.json')]);
  assert.equal(notSave.code, 2);
  assert.match(notSave.stderr, /^rbtrace diff: BEFORE: .*ndjson\.json is not an rbtrace saved run .*\n$/);
  assert.deepEqual(await settledLeftovers(['ms_malloc', 'strlat_entry', 'tb_exit', 'fe_exit']), []);
});

test('--save into a directory that does not exist: refused before tracing', async () => {
  const r = await runRbtrace(['mallocstat', '--save', '/nonexistent/dir/run.json', '--', prog, '1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^rbtrace mallocstat: --save: cannot write in \/nonexistent\/dir: cannot open \/nonexistent\/dir \(ENOENT\) \(.*\)\n$/);
});

test('docs/measure-change-measure.md: the Rust example, built from the page, gives the figures it quotes', async () => {
  const page = readFileSync(join(ROOT, 'docs/measure-change-measure.md'), 'utf8');
  const source = (name: string) => page.match(new RegExp('```rust ' + name.replace('.', '\\.') + '\\n([\\s\\S]*?)```'))![1];
  // rustup installs into ~/.cargo/bin, which a CI shell's PATH may lack; Debian's is in /usr/bin.
  const rustc = ['rustc', join(homedir(), '.cargo/bin/rustc')].find((c) => spawnSync(c, ['--version']).status === 0);
  assert.ok(rustc, 'rustc is needed (scripts/setup.sh installs cargo)');
  for (const name of ['before', 'after']) {
    writeFileSync(file(`${name}.rs`), source(`${name}.rs`));
    execFileSync(rustc, ['-O', '-o', file(name), file(`${name}.rs`)], { stdio: 'pipe' });
  }
  await save('before.json', ['mallocstat', '--', file('before')]);
  await save('after.json', ['mallocstat', '--', file('after')]);
  const rows = await diffJson('before.json', 'after.json');
  assert.equal(rows.filter((r) => r.label !== '')[0].label, 'realloc', 'the biggest change first (after the whole run\'s figures)');
  // 5 reallocs per row (capacity 4 -> 128) x 10,000 rows, gone; the runtime's own stay.
  const realloc = fieldOf(rows, 'realloc', 'count')!;
  assert.equal(realloc.change, -50000);
  assert.ok(realloc.after <= 10, `start-up reallocs: ${realloc.after}`);
  assert.equal(fieldOf(rows, 'malloc', 'count')!.change, 0);
  const text = await runRbtrace(['diff', file('before.json'), file('after.json')]);
  assert.match(text.stdout, new RegExp(`^realloc\\s+count\\s+${(50000 + realloc.after).toLocaleString('en-US')}\\s+${realloc.after}\\s+-50,000\\s+-\\d+\\.\\d%$`, 'm'));

  const caught = await runRbtrace(['mallocstat', '--assert', 'realloc.count <= 1000', '--', file('before')]);
  assert.equal(caught.code, EXIT_ASSERT, caught.stderr);
  assert.match(caught.stderr, /^rbtrace mallocstat: assertion failed: realloc\.count <= 1000 \(realloc\.count = 50,0\d\d\)$/m);
  const fixed = await runRbtrace(['mallocstat', '--assert', 'realloc.count <= 1000', '--', file('after')]);
  assert.equal(fixed.code, 0, fixed.stderr);
  const regressed = await runRbtrace(['mallocstat', '--baseline', file('after.json'), '--max-regression', '10', '--', file('before')]);
  assert.equal(regressed.code, EXIT_ASSERT);
  assert.match(regressed.stderr, /regression: realloc\.count \d+ -> 50,0\d\d \(\+\d+\.\d%; at most \+10% allowed\)/);
});
