// rbtrace profile's saved figures (--save, --assert, --baseline, rbtrace
// diff): samples per function, self and total, on a C program that measures
// its own CPU time in each function (CLOCK_THREAD_CPUTIME_ID around each
// call): that measurement is the oracle the sampled shares are judged by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace, settledLeftovers } from '../helpers.js';
import { buildHotCold } from '../checks/hot-cold.js';

const OUR_PROGRAMS = ['profile_sample', 'rbtrace_fork', 'rbtrace_exec', 'rbtrace_exit'];

// The program (test/checks/hot-cold.ts): hot(NH) through caller(), then
// cold(NC), for SECS seconds; on stderr, the CPU time it measured in each.
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-profile-figures-'));
const bin = buildHotCold(dir, 'timedprog');

interface Row { function: string; self: number; total: number }
interface Saved { tool: string; figures: { samples: number; functions: Row[] } }

function readSaved(file: string): Saved {
  return JSON.parse(readFileSync(file, 'utf8')) as Saved;
}

/** The program's own account of its CPU time, from its stderr. */
function cpuOf(stderr: string): { hot: number; cold: number; all: number } {
  const m = /cpu hot ([\d.]+) cold ([\d.]+) all ([\d.]+)/.exec(stderr);
  assert.ok(m, `no CPU times from the program:\n${stderr}`);
  return { hot: Number(m[1]), cold: Number(m[2]), all: Number(m[3]) };
}

const row = (s: Saved, name: string): Row => s.figures.functions.find((r) => r.function === name) ?? { function: name, self: 0, total: 0 };

test('--save: self samples per function agree with the CPU time the program measured in each; --assert on them', async () => {
  const file = join(dir, 'hot.json');
  const r = await runRbtrace(['profile', '-F', '99', '--save', file, '--assert', 'hot.self > cold.self', '--assert', 'caller.total >= hot.self',
    '--', bin, '2', '270000', '30000']);
  assert.equal(r.code, 0, r.stderr);
  const cpu = cpuOf(r.stderr);
  const saved = readSaved(file);
  assert.equal(saved.tool, 'profile');
  const { samples } = saved.figures;
  const hot = row(saved, 'hot');
  const cold = row(saved, 'cold');
  // 2 s at 99 Hz is ~200 samples on an idle CPU; a loaded 2-CPU machine gives the program less.
  assert.ok(samples >= 40, `only ${samples} samples`);
  // Samples follow CPU time: cpu-clock fires every 1/99 s of the program's
  // CPU time. ±35%: the first and last ticks, and a VM's steal time.
  assert.ok(Math.abs(samples - cpu.all * 99) <= 0.35 * cpu.all * 99, `${samples} samples for ${cpu.all} s of CPU at 99 Hz`);
  // hot's share of the two functions' samples is its share of their CPU
  // time, within 12 points: the binomial sd is 3 points at 100 samples.
  const sampled = hot.self / (hot.self + cold.self);
  const measured = cpu.hot / (cpu.hot + cpu.cold);
  assert.ok(Math.abs(sampled - measured) <= 0.12, `hot: ${(100 * sampled).toFixed(1)}% of samples, ${(100 * measured).toFixed(1)}% of CPU time\n${JSON.stringify(saved.figures.functions.slice(0, 8))}`);
  assert.ok(hot.self >= 0.5 * samples, `hot has the most self samples: ${hot.self} of ${samples}`);
  // total: hot calls nothing, so its total exceeds its self only by the
  // samples taken in the kernel on top of it (an interrupt, a page fault):
  // a few per cent at most. caller's total holds hot's; main's holds both.
  assert.ok(hot.total >= hot.self && hot.total - hot.self <= 0.1 * samples, `hot: self ${hot.self}, total ${hot.total}`);
  assert.equal(row(saved, 'caller').self, 0);
  assert.ok(row(saved, 'caller').total >= hot.self);
  assert.ok(row(saved, 'main').total >= hot.self + cold.self);
  // Every sample has an innermost frame: self sums to the samples.
  assert.equal(saved.figures.functions.reduce((a, f) => a + f.self, 0), samples);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), [], 'nothing stays loaded');
});

test('--assert fails (exit 3) when the figures say otherwise, and names an unknown figure (exit 2) before tracing', async () => {
  const failed = await runRbtrace(['profile', '-F', '99', '--assert', 'cold.self > hot.self', '--', bin, '1', '270000', '30000']);
  assert.equal(failed.code, 3, failed.stderr);
  assert.match(failed.stderr, /assertion failed: cold\.self > hot\.self \(cold\.self = \d+, hot\.self = \d+\)/);
  const typo = await runRbtrace(['profile', '--assert', 'hot.selff > 1', '--', bin, '1', '1', '1']);
  assert.equal(typo.code, 2, typo.stderr);
  assert.match(typo.stderr, /'selff' in 'hot\.selff' is not a figure of a function .*ROW\.self, ROW\.total/);
  assert.doesNotMatch(typo.stderr, /cpu hot/, 'the command never ran');
});

test('rbtrace diff of two saves: the work moved from hot to cold shows as such; --baseline calls it a regression', async () => {
  const before = join(dir, 'before.json');
  const after = join(dir, 'after.json');
  const a = await runRbtrace(['profile', '-F', '99', '--save', before, '--', bin, '1.5', '270000', '30000']);
  assert.equal(a.code, 0, a.stderr);
  // The same program with the work swapped: cold now does 9x hot's.
  const b = await runRbtrace(['profile', '-F', '99', '--save', after, '--baseline', before, '--', bin, '1.5', '30000', '270000']);
  assert.equal(b.code, 3, `cold.self grew: a regression over the baseline\n${b.stderr}`);
  assert.match(b.stderr, /regression: cold\.self \d+ -> \d+/);
  const d = await runRbtrace(['diff', '--json', before, after]);
  assert.equal(d.code, 0, d.stderr);
  const doc = JSON.parse(d.stdout) as { tool: string; rows: { label: string; fields: { field: string; before: number; after: number }[] }[] };
  assert.equal(doc.tool, 'profile');
  const field = (label: string, f: string) => doc.rows.find((r) => r.label === label)?.fields.find((x) => x.field === f);
  const hot = field('hot', 'self');
  const cold = field('cold', 'self');
  assert.ok(hot && cold, d.stdout);
  // Before, hot has ~90% of the samples and cold ~10%; after, the reverse.
  assert.ok(hot.before > hot.after && cold.after > cold.before, JSON.stringify({ hot, cold }));
  assert.ok(cold.after > hot.after && hot.before > cold.before);
  const text = await runRbtrace(['diff', before, after]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^FUNCTION\s+FIGURE\s+BEFORE\s+AFTER/m);
  assert.match(text.stdout, /^hot\s+self\s+\d+\s+\d+\s+-\d+/m);
});
