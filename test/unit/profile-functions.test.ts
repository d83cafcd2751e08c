// profile --functions: one row per function, total counted once per sample
// (perf report --children's rule), so recursion is one row and never > 100 %;
// and Ruby 3.4's labels from a method entry's names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { functionRows } from '../../src/tools/profile/views.js';
import { qualifyLabel } from '../../src/core/unwind/ruby-names.js';
import type { Frame } from '../../src/core/stacks/index.js';

const f = (name: string): Frame => ({ name, addr: 0n, kernel: false });

test('a recursive Ruby method is one row whatever lines it recursed at; total once per sample', () => {
  // Innermost first: fib at line 3 called from fib at line 4, twice, from <main>.
  const rows = functionRows([
    { frames: [f('Object#fib (a.rb:3)'), f('Object#fib (a.rb:4)'), f('Object#fib (a.rb:4)'), f('<main> (a.rb:9)'), f('main')], count: 6 },
    { frames: [f('Integer#+'), f('Object#fib (a.rb:4)'), f('<main> (a.rb:9)'), f('main')], count: 4 },
  ]);
  const fib = rows.filter((r) => r.function.startsWith('Object#fib'));
  assert.deepEqual(fib, [{ function: 'Object#fib_(a.rb)', self: 6, total: 10 }]);
  assert.deepEqual(rows.find((r) => r.function === 'Integer#+'), { function: 'Integer#+', self: 4, total: 4 });
  assert.deepEqual(rows.find((r) => r.function === 'main'), { function: 'main', self: 0, total: 10 });
  // Self sums to the samples; no total exceeds them.
  assert.equal(rows.reduce((a, r) => a + r.self, 0), 10);
  assert.ok(rows.every((r) => r.total <= 10));
});

test('Ruby 3.4 labels: methods, blocks and singleton methods get their class; <main> and class bodies do not', () => {
  const m = { method: 'bar', owner: 'Foo', qualified: 'Foo#bar' };
  assert.equal(qualifyLabel('bar', m), 'Foo#bar');
  assert.equal(qualifyLabel('block in bar', m), 'block in Foo#bar');
  assert.equal(qualifyLabel('block (2 levels) in bar', m), 'block (2 levels) in Foo#bar');
  assert.equal(qualifyLabel('run', { method: 'run', owner: 'Foo', qualified: 'Foo.run' }), 'Foo.run');
  assert.equal(qualifyLabel('<main>', undefined), '<main>');
  assert.equal(qualifyLabel('<class:Foo>', m), '<class:Foo>');
  // An anonymous class has no path: the bare label stays.
  assert.equal(qualifyLabel('bar', { method: 'bar', owner: '', qualified: 'bar' }), 'bar');
});
