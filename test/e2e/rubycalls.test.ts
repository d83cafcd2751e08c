// rubycalls end to end on Debian's libruby, against Ruby's own count: a
// TracePoint(:call, :c_call) inside the traced program (test/ruby/
// rubycalls-oracle.rb) counts each method called in its window. The program
// runs twice under rbtrace, with and without the workload, so calls made
// before the window (interpreter start, `require 'json'`) cancel out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runRbtrace, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['method_entry', 'method_return', 'cmethod_entry', 'cmethod_return'];
const ORACLE = join(ROOT, 'test/ruby/rubycalls-oracle.rb');
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-rubycalls-'));

interface Method { method: string; kind: 'ruby' | 'c'; count: number; timed?: number; hist?: { count: number }[] }

/** The records: with -- CMD on stderr (the command owns stdout), among rbtrace's warnings if any. */
function records(text: string): { methods: Method[]; notes?: string[] }[] {
  return text.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

function counts(stdout: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records(stdout)) for (const x of r.methods) m.set(x.method, (m.get(x.method) ?? 0) + x.count);
  return m;
}

async function oracleRun(work: boolean): Promise<{ traced: Map<string, number>; oracle: Map<string, number> }> {
  const out = join(dir, `o-${work}`);
  const r = await runRbtrace(['rubycalls', '--all', '--json', '--', 'ruby', '--disable-gems', ORACLE], { env: { WORK: work ? '1' : '0', RC_OUT: out } });
  assert.equal(r.code, 0, r.stderr);
  const oracle = new Map(readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const i = l.lastIndexOf(' ');
    return [l.slice(0, i), Number(l.slice(i + 1))] as [string, number];
  }));
  return { traced: counts(r.stderr), oracle };
}

// The oracle's own code calls these, in and after the window, as many times
// as it counts events: rbtrace sees them (the TracePoint does not see its own
// block), so they are not compared.
const ORACLE_OWN = new Set(['Hash#[]', 'Hash#[]=', 'Integer#+', 'Kernel#hash', 'Array#<<', 'Hash#each', 'Module#name',
  'Module#singleton_class?', 'Module#to_s', 'Module#inspect', 'String#sub', 'Array#join', 'File.write', 'IO.write', 'TracePoint#disable']);

test('rubycalls = TracePoint(:call, :c_call) counts per Class#method, Ruby and C methods (JSON round trip, classes, modules, super, recursion, raise)', async () => {
  const base = await oracleRun(false);
  const full = await oracleRun(true);
  const keys = new Set([...full.oracle.keys(), ...full.traced.keys(), ...base.traced.keys()]);
  const delta = (m: Map<string, number>, b: Map<string, number>, k: string) => (m.get(k) ?? 0) - (b.get(k) ?? 0);
  let compared = 0;
  let calls = 0;
  for (const k of keys) {
    if (ORACLE_OWN.has(k)) continue;
    const traced = delta(full.traced, base.traced, k);
    const oracle = delta(full.oracle, base.oracle, k);
    if (k === 'Exception#backtrace') {
      // Ruby's raise calls it through rb_get_backtrace(), which fires the
      // TracePoint's c_call but not the cmethod__entry probe (error.c): one per raise.
      assert.equal(oracle - traced, 5, 'Exception#backtrace: the 5 raises');
      continue;
    }
    assert.equal(traced, oracle, `${k}: rbtrace ${traced}, TracePoint ${oracle}`);
    compared++;
    calls += oracle;
  }
  // The workload's methods, both kinds, were compared.
  assert.ok(compared >= 25 && calls >= 1000, `${compared} methods, ${calls} calls`);
  for (const m of ['Shape#area', 'Square#area', 'Shape#initialize', 'Shape.build', 'Helper.fib', 'Helper#twice']) {
    assert.ok((full.traced.get(m.replace('.', '#')) ?? 0) > 0, `${m} counted`);
  }
  assert.equal(delta(full.traced, base.traced, 'Helper#fib'), 465, 'fib(12): 465 calls');
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('no TracePoint in the target: C methods counted exactly, and a note says why no Ruby method is', async () => {
  const script = 'def mine; "a".upcase; end; 10.times { mine; [3, 1, 2].sort }; sleep 0.3';
  const r = await runRbtrace(['rubycalls', '--all', '--json', '--', 'ruby', '--disable-gems', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  const c = counts(r.stderr);
  assert.equal(c.get('String#upcase'), 10);
  assert.equal(c.get('Array#sort'), 10);
  assert.equal(c.get('Object#mine'), undefined);
  const notes = records(r.stderr).flatMap((x) => x.notes ?? []);
  assert.ok(notes.some((n) => /no method written in Ruby was seen.*TracePoint.*ruby_vm_event_flags 0x0/.test(n)), notes.join('\n'));
  const text = await runRbtrace(['rubycalls', '-T', '3', '--', 'ruby', '--disable-gems', '-e', script]);
  assert.match(text.stderr, /^METHOD\s+TYPE\s+CALLS$/m);
  assert.match(text.stderr, /^note: process \d+: no method written in Ruby was seen/m);
});

test('-L: every call timed, a histogram per method; -P: the pid of the command', async () => {
  const script = 'TracePoint.new(:call, :return) {}.enable; def slow; sleep 0.01; end; 5.times { slow }';
  const r = await runRbtrace(['rubycalls', '-L', '-P', '--all', '--json', '--', 'ruby', '--disable-gems', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  const ms = records(r.stderr).flatMap((x) => x.methods as (Method & { pid: number; total_ns: number })[]);
  const slow = ms.find((m) => m.method === 'Object#slow')!;
  assert.ok(slow, r.stderr);
  assert.equal(slow.kind, 'ruby');
  assert.equal(slow.count, 5);
  assert.equal(slow.timed, 5);
  assert.equal(slow.hist!.reduce((a, b) => a + b.count, 0), 5);
  assert.ok(slow.total_ns >= 5 * 10e6, `sleep 0.01 x5: ${slow.total_ns} ns`);
  const sleep = ms.find((m) => m.method === 'Kernel#sleep')!;
  assert.equal(sleep.count, 5);
  assert.ok(slow.pid > 0 && ms.every((m) => m.pid === slow.pid));
  // :call without :return: Ruby methods counted, not timed, and said so.
  const r2 = await runRbtrace(['rubycalls', '-L', '--all', '--json', '--', 'ruby', '--disable-gems', '-e', script.replace(':call, :return', ':call')]);
  const recs = records(r2.stderr);
  assert.equal(recs.flatMap((x) => x.methods).find((m) => m.method === 'Object#slow')?.timed, 0);
  assert.equal(recs.flatMap((x) => x.methods).find((m) => m.method === 'Kernel#sleep')?.timed, 5);
  assert.ok(recs.flatMap((x) => x.notes ?? []).some((n) => /counted but not timed.*:return/.test(n)));
});

test('bad input: one-line usage errors', async () => {
  for (const args of [['-T', '0'], ['-T', '3', '--all']]) {
    const r = await runRbtrace(['rubycalls', ...args, '--', 'true']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
