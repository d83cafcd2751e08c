// The --assert language: syntax (one-line usage errors at parse time, with
// the column), names checked against a tool's schema before anything loads,
// units, and evaluation over figures as the collector finishes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAssertions, describeOutcome, evaluate, parseAssertion } from '../../src/core/report/assert.js';
import { FigureCollector } from '../../src/core/report/figures.js';
import { UsageError } from '../../src/core/errors.js';
import { MALLOCSTAT, STRLAT, SYNQUEUE, SYSCOUNT } from '../../src/tools/common/figures.js';

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, `not a UsageError: ${err}`);
    assert.equal(err.exitCode, 2);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail('no error');
}

test('parse: numbers with units and multipliers become ns and plain numbers', () => {
  const num = (text: string) => {
    const a = parseAssertion(`x < ${text}`).ast;
    assert.equal(a.kind, 'cmp');
    return a.kind === 'cmp' && a.right.kind === 'number' ? [a.right.value, a.right.time] : undefined;
  };
  assert.deepEqual(num('2ms'), [2e6, true]);
  assert.deepEqual(num('1.5us'), [1500, true]);
  assert.deepEqual(num('3µs'), [3000, true]);
  assert.deepEqual(num('10ns'), [10, true]);
  assert.deepEqual(num('1s'), [1e9, true]);
  assert.deepEqual(num('40k'), [40000, false]);
  assert.deepEqual(num('2M'), [2e6, false]);
  assert.deepEqual(num('100'), [100, false]);
});

test('parse: paths, quoted row names, and/or/not with precedence', () => {
  const a = parseAssertion('openat.errors < 100 or not (p99 >= 2ms and "127.0.0.1:8080".overflows == 0)');
  assert.equal(a.ast.kind, 'or');
  if (a.ast.kind !== 'or') return;
  assert.equal(a.ast.right.kind, 'not');
  const b = parseAssertion('a.count > 1 or b.count > 1 and c.count > 1').ast;
  // and binds tighter than or
  assert.equal(b.kind, 'or');
  if (b.kind === 'or') assert.equal(b.right.kind, 'and');
  const c = parseAssertion('"127.0.0.1:8080".drops != 0').ast;
  assert.ok(c.kind === 'cmp' && c.left.kind === 'path' && c.left.segments[0] === '127.0.0.1:8080');
});

test('parse: bad syntax is one usage line naming the column', () => {
  assert.match(usage(() => parseAssertion('openat.count <== 3')), /--assert 'openat.count <== 3': unexpected '=' .* at column 16$/);
  assert.match(usage(() => parseAssertion('openat.count = 3')), /unexpected '='.*column 14$/);
  assert.match(usage(() => parseAssertion('p99 < 2xs')), /unknown unit 'xs'/);
  assert.match(usage(() => parseAssertion('p99 <')), /expected a figure or a number, found end of expression/);
  assert.match(usage(() => parseAssertion('p99 2ms')), /expected a comparison/);
  assert.match(usage(() => parseAssertion('(p99 < 2ms')), /expected '\)'/);
  assert.match(usage(() => parseAssertion('p99 < 2ms p50 < 1ms')), /unexpected 'p50' \(join conditions with and\/or\)/);
  assert.match(usage(() => parseAssertion('1 < 2')), /a comparison of two numbers/);
  assert.match(usage(() => parseAssertion('"open.count < 1')), /unterminated quoted name/);
  assert.match(usage(() => parseAssertion('count < 1 & x')), /unexpected '&'/);
  assert.match(usage(() => parseAssertion('  ')), /wants an expression/);
});

test('names and units are checked against the schema before the run', () => {
  const sc = SYSCOUNT({});
  checkAssertions([parseAssertion('openat.errors < 100'), parseAssertion('total.count > 0'), parseAssertion('read.p99 < 1ms'), parseAssertion('count > 0')], sc, 'syscount');
  assert.match(usage(() => checkAssertions([parseAssertion('openat.cnt < 1')], sc, 'syscount')), /'cnt' in 'openat.cnt' is not a figure of a syscall/);
  assert.match(usage(() => checkAssertions([parseAssertion('read.p99 < 1000')], sc, 'syscount')), /read.p99 is a duration: give 1000 a unit/);
  assert.match(usage(() => checkAssertions([parseAssertion('read.count < 1ms')], sc, 'syscount')), /read.count is not a duration: 1ms has a time unit/);
  assert.match(usage(() => checkAssertions([parseAssertion('total.p99 < 1ms')], sc, 'syscount')), /percentiles are per syscall/);
  checkAssertions([parseAssertion('p99 < 2ms and count > 10 and max < 1s')], STRLAT(), 'strlat');
  assert.match(usage(() => checkAssertions([parseAssertion('work.count > 1')], STRLAT(), 'strlat')), /strlat has no rows/);
  checkAssertions([parseAssertion('overflows == 0'), parseAssertion('"0.0.0.0:80".drops == 0')], SYNQUEUE(), 'synqueue');
  // a duration may be compared with a bare 0
  checkAssertions([parseAssertion('realloc.total == 0')], MALLOCSTAT({}), 'mallocstat');
});

const MALLOC_FUNCTIONS = ['malloc', 'calloc', 'realloc', 'free'];

test('evaluate: rows, totals, top-level figures, absent rows of a known set count 0', () => {
  const c = new FigureCollector(MALLOCSTAT({ functions: MALLOC_FUNCTIONS }));
  // two interval deltas: counts add up, max is the max
  c.add({ functions: [{ name: 'realloc', count: 50000, bytes: 10, timed: 50000, total_ns: 5e6, max_ns: 300 }, { name: 'malloc', count: 7, bytes: 70 }], sizes: [0, 2, 3] });
  c.add({ functions: [{ name: 'realloc', count: 40002, bytes: 5, timed: 40002, total_ns: 4e6, max_ns: 200 }], sizes: [1] });
  const f = c.result();
  const schema = MALLOCSTAT({ functions: MALLOC_FUNCTIONS });
  const ev = (t: string) => evaluate(parseAssertion(t), f, schema, 'mallocstat');
  assert.equal(ev('realloc.count <= 40000').ok, false);
  assert.equal(ev('realloc.count == 90002').ok, true);
  assert.equal(ev('realloc.max <= 300ns and realloc.max > 299ns').ok, true);
  assert.equal(ev('realloc.avg == 100ns').ok, true); // 9e6 ns / 90002 timed rounds to 100
  assert.equal(ev('count == 90009').ok, true); // total over rows
  assert.equal(ev('total.bytes == 85').ok, true);
  assert.equal(ev('calloc.count == 0').ok, true); // never called
  assert.equal(ev('realloc.count < 1 or malloc.count == 7').ok, true);
  assert.equal(ev('not malloc.count == 7').ok, false);
  const o = ev('realloc.count <= 40k');
  assert.equal(describeOutcome(o), 'assertion failed: realloc.count <= 40k (realloc.count = 90,002)');
  // A misspelled row of a known set is a usage error, never a silent 0.
  assert.throws(() => ev('realoc.count <= 1000'), /^UsageError: --assert: no function 'realoc' in 'realoc.count' \(did you mean realloc\?\)$/);
  assert.throws(() => checkAssertions([parseAssertion('realoc.count <= 1000')], schema, 'mallocstat'), /did you mean realloc/);
});

test('evaluate: open rows (per process): an absent row fails the assertion unless written ROW?.FIELD', () => {
  const schema = MALLOCSTAT({ perProcess: true, functions: MALLOC_FUNCTIONS });
  const c = new FigureCollector(schema);
  c.add({ functions: [{ comm: 'app', name: 'malloc', count: 3, bytes: 30 }] });
  const f = c.result();
  const ev = (t: string) => evaluate(parseAssertion(t), f, schema, 'mallocstat');
  // A row's label joins its key fields (comm, name) with ':'.
  assert.equal(ev('"app:malloc".count == 3').ok, true);
  const absent = ev('"other:malloc".count == 0');
  assert.equal(absent.ok, false);
  assert.match(describeOutcome(absent), /"other:malloc"\.count = no such row in this run/);
  assert.equal(ev('"other:malloc"?.count == 0').ok, true);
  assert.equal(ev('"app:malloc"?.count == 3').ok, true);
  assert.throws(() => parseAssertion('other.count? == 0'), /'\?' goes after a row's name/);
});

test('evaluate: percentiles from the merged histogram; none without samples', () => {
  const schema = STRLAT();
  const c = new FigureCollector(schema);
  // 98 calls in [1,2) ms, 2 in [4,8) ms, as two deltas in the --json bucket form
  c.add({ count: 50, total_ns: 1, hist: [{ low: 1048576, high: 2097151, count: 50 }] });
  c.add({ count: 50, total_ns: 1, hist: [{ low: 1048576, high: 2097151, count: 48 }, { low: 4194304, high: 8388607, count: 2 }] });
  const f = c.result();
  const ev = (t: string) => evaluate(parseAssertion(t), f, schema, 'strlat');
  assert.equal(ev('p50 == 2097151ns').ok, true);
  assert.equal(ev('p99 < 2ms').ok, false);
  assert.equal(ev('p99 == 8388607ns').ok, true);
  assert.match(describeOutcome(ev('p99 < 2ms')), /p99 = 8,388,607 ns \(8\.39 ms\)/);
  const empty = new FigureCollector(schema);
  empty.add({ count: 0, total_ns: 0, hist: [] });
  const e = evaluate(parseAssertion('p99 < 2ms'), empty.result(), schema, 'strlat');
  assert.equal(e.ok, false);
  assert.match(describeOutcome(e), /p99 = no samples/);
});
