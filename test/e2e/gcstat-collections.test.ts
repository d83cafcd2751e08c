// gcstat's collection model against the VM's own record: GC::Profiler, enabled
// inside the traced ruby by a file the test makes it require (RUBYOPT=-r),
// keeps one record per collection with its flags (GC.latest_gc_info's
// major_by, gc_by, immediate_sweep); at exit the hook writes them with their
// GC numbers and GC.stat's counts. rbtrace --log must show the same
// collections, numbered as the VM numbers them, each with the same
// major/minor, major_by and gc_by. Exact: both read the same VM fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-gcmodel-'));
const hook = join(dir, 'gc_oracle.rb');
writeFileSync(hook, `GC::Profiler.enable
$gc_oracle_base = GC.count
at_exit do
  s = GC.stat
  lines = ["stat #{s[:count]} #{s[:major_gc_count]} #{s[:minor_gc_count]}"]
  GC::Profiler.raw_data.each_with_index do |r, i|
    f = r[:GC_FLAGS]
    lines << "gc #{$gc_oracle_base + i + 1} #{f[:major_by] || '-'} #{f[:gc_by] || '-'} #{f[:immediate_sweep]}"
  end
  File.write(ENV['GC_OUT'], lines.join("\\n") + "\\n")
end
`);

// Forced majors and minors, lazy and immediate sweeps, newobj-triggered
// minors and nofree/oldgen majors from a churn that keeps some objects old.
const MIXED = `3.times { GC.start }
GC.start(full_mark: false, immediate_sweep: false)
keep = []
200_000.times { |i| s = "x" * (i % 64); keep << s if i % 50 == 0 }
big = Array.new(20) { "y" * 1_000_000 }
GC.start(full_mark: true, immediate_sweep: false)
100_000.times { |i| [i, i.to_s] }
`;

interface Collection { gc: number; major: boolean; major_by: string | null; gc_by: string | null; immediate_sweep: boolean; mark_steps: number; sweep_steps: number; pause_ns: number; max_pause_ns: number; mark_ns: number; sweep_ns: number }

async function compare(argv: string[]): Promise<{ n: number; majors: number }> {
  const out = join(dir, `out-${Math.random()}`);
  const r = await runRbtrace(['gcstat', '--log', '--json', '--', ...argv], { env: { RUBYOPT: `-r${hook}`, GC_OUT: out } });
  assert.equal(r.code, 0, r.stderr);
  const cols: Collection[] = r.stderr.split('\n').filter((l) => l.includes('"kind":"collection"')).map((l) => JSON.parse(l));
  const oracle = readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split(' '));
  const [, count, major, minor] = oracle.find((l) => l[0] === 'stat')!.map(Number);
  // Every collection of the run, numbered 1..GC.count as the VM numbers them (the probes are attached before exec).
  assert.deepEqual(cols.map((c) => c.gc), Array.from({ length: count }, (_, i) => i + 1), 'collections = GC.count, in order');
  assert.equal(cols.filter((c) => c.major).length, major, 'majors = GC.stat(:major_gc_count)');
  assert.equal(cols.filter((c) => !c.major).length, minor, 'minors = GC.stat(:minor_gc_count)');
  const byGc = new Map(cols.map((c) => [c.gc, c]));
  const recs = oracle.filter((l) => l[0] === 'gc');
  assert.ok(recs.length > 0);
  for (const [, n, majorBy, gcBy, immediate] of recs) {
    const c = byGc.get(Number(n))!;
    assert.deepEqual([c.major_by ?? '-', c.gc_by ?? '-', String(c.immediate_sweep)], [majorBy, gcBy, immediate], `GC #${n}`);
    assert.equal(c.major, majorBy !== '-', `GC #${n} major`);
  }
  for (const c of cols) {
    // Each collection has its first mark step, and at least one sweep step.
    assert.equal(c.mark_steps, 1, `GC #${c.gc} mark steps`);
    assert.ok(c.sweep_steps >= 1, `GC #${c.gc} sweep steps`);
    assert.equal(c.pause_ns, c.mark_ns + c.sweep_ns, `GC #${c.gc}: pause is the sum of its steps`);
    assert.ok(c.max_pause_ns <= c.pause_ns && c.max_pause_ns > 0);
  }
  return { n: count, majors: major };
}

test('gcstat --log = GC::Profiler + GC.stat of the same run: a mixed workload (forced, lazy, newobj, nofree)', async () => {
  const { n, majors } = await compare(['ruby', '--disable-gems', '-e', MIXED]);
  assert.ok(n >= 10 && majors >= 4 && n - majors >= 4, `a mix: ${n} GCs, ${majors} majors`);
});

test('gcstat --log = GC::Profiler + GC.stat of the same run: gem list (rubygems)', async () => {
  const { n } = await compare(['ruby', '-S', 'gem', 'list', '--local']);
  assert.ok(n >= 1);
});
