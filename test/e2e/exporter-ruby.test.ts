// The exporter's Ruby families against Ruby's own counts, one ruby in a
// cgroup of our own (--cgroup: other rubies on the machine are not seen),
// through real scrapes of two exporters at once: --tools gcstat,rubycalls
// with room for every method, and --tools rubycalls --max-series 20.
//  - rbtrace_ruby_gc_collections_total by kind: deltas = GC.stat's
//    major_gc_count / minor_gc_count deltas and GC.count's, exactly; the
//    5 GC.start are major/method/force, the 5 GC.start(full_mark: false)
//    minor/method, exactly.
//  - rbtrace_ruby_gc_seconds{phase="mark"}: one observation per collection
//    (GC.count delta), exactly.
//  - rbtrace_ruby_gc_pause_seconds: one observation per collection once the
//    ruby has ended (each collection is done), exactly.
//  - rbtrace_ruby_method_calls_total: per C method, delta = the
//    TracePoint(:c_call) count of the same window, exactly (the methods the
//    oracle itself calls around its window are left out, listed below).
//  - with --max-series 20: 19 methods and method="other", each shown value
//    equal to the unlimited exporter's, other = the sum of the rest, and the
//    dropped-series counter = the number of methods summed into it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, cgroupV2Mount, sleep } from '../helpers.js';
import { attached, lineReader, programIdsOf, scrape, startExporter, stillLoaded, valueOf, type Exporter, type Series } from '../exporter-helpers.js';

const ORACLE = join(ROOT, 'test/ruby/exporter-oracle.rb');
const mount = cgroupV2Mount();
const cg = mount ? join(mount, `rbtrace-exp-ruby-${process.pid}`) : '';
const CALLS = 'rbtrace_ruby_method_calls_total';
const COLL = 'rbtrace_ruby_gc_collections_total';
// Called by the oracle around its window (entries the TracePoint does not
// count: enable/disable themselves, STDIN.gets returning, puts 'done'), or
// from its hook: not compared.
const ORACLE_OWN = new Set(['TracePoint#enable', 'TracePoint#disable', 'GC.stat', 'Kernel#puts', 'IO#puts', 'IO#write', 'Hash#[]', 'Hash#[]=',
  'TracePoint#defined_class', 'TracePoint#method_id', 'Module#to_s', 'Symbol#to_s', 'Kernel#gets', 'IO#gets', 'Integer#+', 'Kernel#hash']);

const children: ChildProcess[] = [];
const exporters: Exporter[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const e of exporters) if (e.run.child.exitCode === null) e.run.signal('SIGKILL');
  for (let i = 0; cg && i < 60; i++) {
    try { rmdirSync(cg); break; } catch { await sleep(50); }
  }
});

const sumOf = (s: Series[], name: string, labels: Record<string, string> = {}) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
const methods = (s: Series[]) => new Map(s.filter((x) => x.name === CALLS).map((x) => [x.labels.method, x.value]));

test('exporter: Ruby collections by kind and reason = GC.stat, pauses one per collection, method calls = TracePoint(:c_call), --max-series folds into other', async () => {
  assert.ok(mount, 'a cgroup v2 mount (findmnt -t cgroup2)');
  mkdirSync(cg);
  const full = await startExporter(['--tools', 'gcstat,rubycalls', '--cgroup', cg]);
  exporters.push(full);
  const small = await startExporter(['--tools', 'rubycalls', '--cgroup', cg, '--max-series', '20']);
  exporters.push(small);
  await attached(full);
  await attached(small);

  const child = spawn('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec ruby --disable-gems "$0"`, ORACLE], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const next = lineReader(child);
  const up = JSON.parse(await next()) as { up: number };
  await sleep(250);
  const before = await scrape(full);
  child.stdin!.write('go\n');
  assert.equal(await next(), 'done');
  await sleep(250); // past the exporter's 200 ms coalescing
  const afterRun = await scrape(full);
  const afterSmall = await scrape(small);
  child.stdin!.write('dump\n');
  const oracle = JSON.parse(await next()) as { gcs: number; major: number; minor: number; calls: Record<string, number> };

  // Collections.
  const d = (labels: Record<string, string>) => sumOf(afterRun, COLL, labels) - sumOf(before, COLL, labels);
  assert.ok(oracle.major >= 5 && oracle.minor >= 6, JSON.stringify(oracle));
  assert.equal(d({}), oracle.gcs, 'collections = GC.count delta');
  assert.equal(d({ kind: 'major' }), oracle.major, 'major = GC.stat(:major_gc_count) delta');
  assert.equal(d({ kind: 'minor' }), oracle.minor, 'minor = GC.stat(:minor_gc_count) delta');
  assert.equal(d({ kind: 'unknown' }), 0, 'every collection explained (Ruby 3.1 layout)');
  assert.equal(d({ kind: 'major', reason: 'method', major_by: 'force' }), 5, 'GC.start x5');
  assert.equal(d({ kind: 'minor', reason: 'method' }), 5, 'GC.start(full_mark: false) x5');
  assert.equal(d({ kind: 'minor', reason: 'newobj' }), oracle.minor - 5, 'the other minors: by allocation');
  const marks = sumOf(afterRun, 'rbtrace_ruby_gc_seconds_count', { phase: 'mark' }) - sumOf(before, 'rbtrace_ruby_gc_seconds_count', { phase: 'mark' });
  assert.equal(marks, oracle.gcs, 'mark histogram: one mark phase per collection');

  // Method calls: each method compared, exactly.
  const m0 = methods(before);
  const m1 = methods(afterRun);
  assert.equal(m1.get('other'), undefined, 'room for every method');
  let compared = 0;
  for (const [k, n] of Object.entries(oracle.calls)) {
    if (ORACLE_OWN.has(k)) continue;
    const traced = (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    assert.equal(traced, n, `${k}: exporter ${traced}, TracePoint ${n}`);
    compared++;
  }
  for (const [k, v] of m1) {
    if (ORACLE_OWN.has(k) || v === (m0.get(k) ?? 0)) continue;
    assert.ok(k in oracle.calls, `${k}: ${v - (m0.get(k) ?? 0)} calls the TracePoint did not see`);
  }
  assert.ok(compared >= 15, `${compared} methods compared`);
  for (const k of ['Integer#gcd', 'String#reverse', 'Array#rotate']) assert.equal(oracle.calls[k], 200, k);

  // --max-series 20: 19 methods and other, the same totals.
  const ms = methods(afterSmall);
  assert.equal(ms.size, 20, [...ms.keys()].join(' '));
  let shownSum = 0;
  for (const [k, v] of ms) {
    if (k === 'other') continue;
    assert.equal(v, m1.get(k), `${k}: the same count in both exporters`);
    shownSum += v;
  }
  const total = [...m1.values()].reduce((a, v) => a + v, 0);
  assert.equal(ms.get('other'), total - shownSum, 'other = the sum of the methods without a series');
  assert.equal(valueOf(afterSmall, 'rbtrace_exporter_dropped_series_total', { family: 'rbtrace_ruby_method_calls' }), m1.size - 19,
    'dropped series = the methods summed into other');

  // The ruby ends: every collection is done, one pause each.
  child.stdin!.end();
  await new Promise((res) => (child.exitCode === null ? child.on('exit', res) : res(null)));
  await sleep(300);
  const end = await scrape(full);
  const pauses = sumOf(end, 'rbtrace_ruby_gc_pause_seconds_count') - sumOf(before, 'rbtrace_ruby_gc_pause_seconds_count');
  // The collection still open at `before` (the last one of the start, if any) is done in the window too.
  assert.equal(pauses, oracle.gcs + (up.up > 0 ? 1 : 0), 'one pause per collection');
  assert.ok(sumOf(end, 'rbtrace_ruby_gc_pause_seconds_sum') > sumOf(before, 'rbtrace_ruby_gc_pause_seconds_sum'));

  for (const e of exporters) {
    const ids = programIdsOf(e.run.child.pid!);
    e.run.signal('SIGTERM');
    const f = await e.run.finished;
    assert.equal(f.code, 0, f.stderr);
    assert.deepEqual(await stillLoaded(ids), []);
  }
});
