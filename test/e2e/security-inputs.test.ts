// Issue 26, findings 4 and 5: input another user can craft for root's
// rbtrace. Saved runs written by the unprivileged attacker (rbtrace-test)
// that used to reach "internal error" (exit 1) must be refused in one line
// naming the bad field (exit 2); --assert expressions past the bounds are
// usage errors; diff of runs with 300,000 rows (rows an unprivileged user
// inflates by exec'ing binaries of many names) draws in time linear in the
// rows and shows the first 100 unless --all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace } from '../helpers.js';

const USER = 'rbtrace-test';
if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-inputs-'));
chmodSync(dir, 0o1777);
after(() => rmSync(dir, { recursive: true, force: true }));

/** The attacker writes FILE (as rbtrace-test, through a shell: the bytes are the attacker's). */
function plant(name: string, doc: unknown): string {
  const path = join(dir, name);
  execFileSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '/bin/sh', '-c', 'cat > "$1"', 'sh', path], { input: typeof doc === 'string' ? doc : JSON.stringify(doc) });
  return path;
}

function run(n: number, shift = 0): Record<string, unknown> {
  const rows = [];
  for (let i = 0; i < n; i++) rows.push({ comm: `cmd${i}`, result: 'ok', count: 1 + ((i + shift) % 7) });
  return {
    format: 'rbtrace-run', version: 1, rbtrace_version: '0.1.0', kernel: '6.1.0', tool: 'execsnoop', options: {}, command: null, pid: null,
    started: '2026-12-06T20:00:00.000Z', duration_s: 1, exit_status: 0,
    schema: { rows: { array: 'execs', key: ['comm', 'result'], noun: 'command:result', counts: ['count'] } }, figures: { execs: rows },
  };
}
const good = plant('good.json', run(3));

test('the template the crafted runs start from diffs fine (exit 0)', async () => {
  const r = await runRbtrace(['diff', good, plant('good2.json', run(3, 1))]);
  assert.equal(r.code, 0, r.stderr);
});

// Each: how the attacker changes a good run, and the field the refusal must name.
const crafted: [string, (d: Record<string, any>) => unknown, RegExp][] = [
  ['started missing', (d) => { delete d.started; }, /"started" is missing/],
  ['started a number', (d) => { d.started = 12; }, /"started" is a number/],
  ['duration_s a string', (d) => { d.duration_s = '1'; }, /"duration_s" is a string/],
  ['command an object', (d) => { d.command = { a: 1 }; }, /"command" is an object/],
  ['pid a string', (d) => { d.pid = '1'; }, /"pid" is a string/],
  ['options a string', (d) => { d.options = 'x'; }, /"options" is a string/],
  ['figures.<rows> an object', (d) => { d.figures.execs = { a: 1 }; }, /"figures\.execs" is an object/],
  ['schema.rows.array "__proto__"', (d) => { d.schema.rows.array = '__proto__'; }, /"schema\.rows\.array" is not a field name/],
  ['schema.rows.key "name"', (d) => { d.schema.rows.key = 'name'; }, /"schema\.rows\.key" is a string/],
  ['a row name that is an object', (d) => { d.figures.execs[0].comm = { toString: 1 }; }, /"figures\.execs\[0\]\.comm" is an object/],
  ['top-level __proto__, schema.rows without noun', (d) => `{"__proto__":{"x":1},${JSON.stringify({ ...d, schema: { rows: { array: 'execs', key: ['comm'], counts: ['count'] } } }).slice(1)}`, /"schema\.rows\.noun" is missing/],
  ['a histogram field "__proto__" with a numeric unit', (d) => { d.schema.rows.histograms = JSON.parse('{"__proto__": {"unit": 1}}'); }, /"schema\.rows\.histograms\.__proto__" is not a field name/],
];

for (const [name, mutate, field] of crafted) {
  test(`crafted saved run, ${name}: one line naming the field, exit 2, as BEFORE and as AFTER`, async () => {
    const d = run(3);
    const changed = mutate(d);
    const file = plant(`${name.replace(/\W+/g, '_')}.json`, changed ?? d);
    for (const args of [['diff', good, file], ['diff', file, good]]) {
      const r = await runRbtrace(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /is a damaged rbtrace saved run: /);
      assert.match(r.stderr, field);
    }
  });
}

test('--assert past the bounds (3,000 parentheses, 3,000 nots, 4,000 conditions, 5,000 characters): usage error, exit 2, before tracing', async () => {
  // The (all past the length bound too), then each bound alone.
  const cases: [string, RegExp][] = [
    [`${'('.repeat(3000)}count > 0${')'.repeat(3000)}`, /of 6009 characters \(at most 4096\)/],
    [`${'not '.repeat(3000)}count > 0`, /characters \(at most 4096\)/],
    [Array.from({ length: 4000 }, () => 'count > 0').join(' and '), /characters \(at most 4096\)/],
    [`${'('.repeat(33)}count > 0${')'.repeat(33)}`, /nested more than 32 deep/],
    [`${'not '.repeat(33)}count > 0`, /nested more than 32 deep/],
    [Array.from({ length: 257 }, () => 'a<1').join(' or '), /more than 256 conditions/],
  ];
  for (const [expr, why] of cases) {
    const r = await runRbtrace(['execsnoop', '-d', '0', '--assert', expr]);
    assert.equal(r.code, 2, `${expr.slice(0, 40)}: ${r.stderr.slice(0, 300)}`);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, why);
    assert.equal(r.stdout, '', 'refused before tracing');
  }
  // Within the bounds, deep and long still parse: 32 levels, 256 conditions.
  const deep = `${'('.repeat(16)}${'not '.repeat(16)}count >= 0${')'.repeat(16)}`;
  const wide = Array.from({ length: 256 }, () => 'count >= 0').join(' or ');
  for (const expr of [deep, wide]) {
    const r = await runRbtrace(['execsnoop', '-d', '0', '--assert', expr]);
    assert.notEqual(r.code, 2, r.stderr);
  }
});

test('diff of two 300,000-row runs planted by the attacker: the first 100 changed rows and a count of the rest, no stack overflow; --all draws every row', async () => {
  const a = plant('big-a.json', run(300000));
  const b = plant('big-b.json', run(300000, 3));
  const t0 = Date.now();
  // 120 s: ~7 s of CPU here; the timeout is for a loaded 2-core CI machine.
  const r = await runRbtrace(['diff', a, b], { timeoutMs: 120000 });
  const ms = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr.slice(0, 300));
  const lines = r.stdout.split('\n');
  // Every row's count differs (1 + i % 7 against 1 + (i + 3) % 7).
  const changed = 300000;
  assert.equal(lines.filter((l) => /^cmd\d+:ok\s+count\s/.test(l)).length, 100);
  assert.ok(r.stdout.includes(`(${(changed - 100).toLocaleString('en-US')} command:results more changed, left out; --all shows every one, --json lists them)`), r.stdout.slice(-400));
  const small = await runRbtrace(['diff', '--all', plant('s-a.json', run(2000)), plant('s-b.json', run(2000, 3))]);
  assert.equal(small.code, 0, small.stderr);
  assert.equal(small.stdout.split('\n').filter((l) => /^cmd\d+:ok\s+count\s/.test(l)).length, 2000);
  assert.ok(ms < 120000, `${ms} ms`);
});
