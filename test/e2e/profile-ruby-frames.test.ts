// profile --unwind dwarf, Ruby frames (issue 28): C methods as their own
// frames, Class#method labels, GC frames, against what the Ruby program
// measures of itself on the same run: per-method CPU time
// (CLOCK_PROCESS_CPUTIME_ID around each call), GC time (GC.stat(:time),
// counted by Ruby between gc_enter and gc_exit, where rb_objspace's during_gc
// bit is set), and whole backtraces (Thread.main.backtrace_locations from a
// sampler thread); with -p, a spinning method's whole backtrace against its own
// caller_locations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORT_ON_STDOUT, runRbtrace } from '../helpers.js';
import { HOST_RUBY, RUBIES, requireRuby, skipUnless } from '../ruby-root.js';

// Four phases called in turn: Array#each with a block, Integer#times with a
// block, an allocation-heavy one (Array.new with a block: Class#new,
// Array#initialize) that makes the GC run, and a recursion of known depth.
const RECURSION = 12;
const LEAF_LINE = 29; // recurse's \`i += 1 while i < 20_000\`
const RECURSE_CALL_LINE = 59; // Worker.run's \`w.recurse(RECURSION)\`
const FRAMES_RB = `require 'json'
RECURSION = ${RECURSION}
class Worker
  def initialize
    @a = Array.new(2000) { |i| i }
  end

  def each_sum
    s = 0
    @a.each { |x| s += x }
    s
  end

  def times_sum(n)
    s = 0
    n.times { |i| s += i }
    s
  end

  def garbage
    Array.new(400) { |i| [i.to_s, "x" * 40, { i => i }] }
  end

  def recurse(depth)
    if depth > 0
      recurse(depth - 1)
    else
      i = 0
      i += 1 while i < 20_000
    end
  end

  def self.run(secs, out)
    w = new
    cpu = Hash.new(0.0)
    seen = Hash.new(0)
    sampler = Thread.new do
      loop do
        sleep 0.005
        locs = Thread.main.backtrace_locations
        seen[locs.map { |l| "#{l.label}:#{l.lineno}" }.join(';')] += 1 if locs
      end
    end
    clock = -> { Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) }
    gc0 = GC.stat(:time)
    c0 = clock.call
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + secs
    while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      t = clock.call
      w.each_sum
      t2 = clock.call
      cpu[:each_sum] += t2 - t
      w.times_sum(2000)
      t3 = clock.call
      cpu[:times_sum] += t3 - t2
      w.garbage
      t4 = clock.call
      cpu[:garbage] += t4 - t3
      w.recurse(RECURSION)
      cpu[:recurse] += clock.call - t4
    end
    total = clock.call - c0
    sampler.kill
    File.write(out, JSON.generate(cpu: cpu, total: total, gc_ms: GC.stat(:time) - gc0, seen: seen))
  end
end
Worker.run(ARGV[0].to_f, ARGV[1])
`;

interface Oracle { cpu: Record<'each_sum' | 'times_sum' | 'garbage' | 'recurse', number>; total: number; gc_ms: number; seen: Record<string, number> }

/** A stack's Ruby part (innermost first) as Ruby 3.1's backtrace_locations writes it: bare labels, C methods at their caller's line. */
function asBacktrace(frames: string[]): string {
  const out: string[] = [];
  let at = '?';
  for (const f of [...frames].reverse()) {
    const m = /^(.*) \((.*):(\d+)\)$/.exec(f);
    if (m) {
      at = m[3];
      out.push(`${m[1].replace(/[A-Z][\w:]*[#.]/, '')}:${at}`);
    } else if (/^[A-Z][\w:]*[#.][^ ()]+$/.test(f)) out.push(`${f.replace(/^[A-Z][\w:]*[#.]/, '')}:${at}`);
  }
  return out.reverse().join(';');
}

interface JsonStack { count: number; frames: { name: string }[] }

for (const ruby of RUBIES) test(`${ruby.label}: C methods, Class#method labels, GC frames and a recursion; shares as the program measures itself, backtraces as its own sampler sees them`, { skip: skipUnless(ruby) }, async (t) => {
  requireRuby(ruby);
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-rbframes-'));
  const script = join(dir, 'frames.rb');
  const oracleFile = join(dir, 'oracle.json');
  writeFileSync(script, FRAMES_RB);
  // The host's ruby as a user types it: no --unwind (auto picks dwarf for a
  // ruby). The 3.3 root's runs through a wrapper script, which auto does not look into.
  const unwind = ruby === HOST_RUBY ? [] : ['--unwind', 'dwarf'];
  const r = await runRbtrace(['profile', ...unwind, '-v', '-F', '499', '--json', ...REPORT_ON_STDOUT, '--', ...ruby.argv([script, '10', oracleFile])]);
  assert.equal(r.code, 0, r.stderr);
  if (ruby === HOST_RUBY) assert.match(r.stderr, /unwind: dwarf \(auto: the target runs ruby/);
  const o = JSON.parse(readFileSync(oracleFile, 'utf8')) as Oracle;
  const stacks: { frames: string[]; n: number }[] = [];
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  for (const st of (JSON.parse(lines[lines.length - 1]) as { stacks: JsonStack[] }).stacks) {
    const frames = st.frames.map((f) => f.name);
    // Only the measured loop: Worker.run's frames (the script's start-up and the sampler thread are not).
    if (frames.some((f) => f.startsWith('Worker.run ('))) stacks.push({ frames, n: st.count });
  }
  const total = stacks.reduce((a, s) => a + s.n, 0);
  const share = (pred: (frames: string[]) => boolean): number => (100 * stacks.filter((s) => pred(s.frames)).reduce((a, s) => a + s.n, 0)) / total;
  const named = (name: string) => (f: string) => f === name || f.startsWith(`${name} (`);
  const has = (name: string) => (frames: string[]) => frames.some(named(name));
  // The ruby is on CPU a third of the time or less on a busy 2-core machine (its sampler
  // thread takes the GVL every 5 ms; other tests run): 10 s x 499 Hz gives >= 300 samples.
  // Each share's sampling error is at most 50/sqrt(n) points; the program's own CPU clocks
  // have none but include the clock reads (~1 point): 3 sigma + 1 (9.7 points at 300
  // samples, 5.3 at 1,200, never under 4; measured here: 723 samples, differences <= 3.1).
  assert.ok(total >= 300, `only ${total} samples in Worker.run`);
  const TOL = Math.max(4, (3 * 50) / Math.sqrt(total) + 1);
  const notes = [`${total} samples, tolerance ${TOL.toFixed(1)} points; rbtrace/program %:`];
  for (const [method, cfunc] of [['each_sum', 'Array#each'], ['times_sum', 'Integer#times'], ['garbage', 'Array#initialize']] as const) {
    const theirs = (100 * o.cpu[method]) / o.total;
    const ours = share(has(`Worker#${method}`));
    notes.push(`${method} ${ours.toFixed(1)}/${theirs.toFixed(1)}`);
    assert.ok(Math.abs(ours - theirs) <= TOL, `Worker#${method}: rbtrace ${ours.toFixed(1)} %, the program's CPU clock ${theirs.toFixed(1)} %`);
    // The C method runs nearly all of its caller's time, under it: its own frame, named from its method entry
    // (3.3 writes Integer#times in Ruby, <internal:numeric>: an iseq frame of that name there).
    const c = share((f) => { const i = f.findIndex((x) => x.startsWith(`Worker#${method} (`)); return i >= 0 && f.slice(0, i).some(named(cfunc)); });
    assert.ok(c >= ours - TOL && c <= ours, `${cfunc} under Worker#${method}: ${c.toFixed(1)} % of ${ours.toFixed(1)} %`);
  }
  // The recursion: its share as the CPU clock says, and at the leaf's line exactly
  // RECURSION + 1 frames of it, the outermost called at Worker.run's line.
  const rec = share(has('Worker#recurse'));
  notes.push(`recurse ${rec.toFixed(1)}/${((100 * o.cpu.recurse) / o.total).toFixed(1)}`);
  assert.ok(Math.abs(rec - (100 * o.cpu.recurse) / o.total) <= TOL, `Worker#recurse: rbtrace ${rec.toFixed(1)} %, the program's CPU clock ${((100 * o.cpu.recurse) / o.total).toFixed(1)} %`);
  const leaves = stacks.filter((s) => s.frames.some((f) => f.startsWith('Worker#recurse (') && f.endsWith(`:${LEAF_LINE})`)));
  assert.ok(leaves.length > 0, 'no sample at the recursion\'s leaf');
  for (const l of leaves) {
    assert.equal(l.frames.filter((f) => f.startsWith('Worker#recurse (')).length, RECURSION + 1, l.frames.join(';'));
    const outer = l.frames.map((f) => f.startsWith('Worker#recurse (')).lastIndexOf(true);
    assert.ok(l.frames[outer + 1]?.startsWith('Worker.run (') && l.frames[outer + 1].endsWith(`:${RECURSE_CALL_LINE})`), l.frames.join(';'));
  }
  // Blocks and class methods are named as Ruby 3.4 names them.
  assert.ok(share(has('block in Worker#each_sum')) > 0, 'no "block in Worker#each_sum" frame');
  assert.ok(stacks.every((s) => s.frames.some((f) => f.startsWith('<main> ('))), 'a stack of Worker.run without <main> under it');
  // GC: Ruby's own GC time over its CPU time in the same loop.
  const gcTheirs = o.gc_ms / 10 / o.total;
  const mark = share(has('[gc: marking]'));
  const sweep = share(has('[gc: sweeping]'));
  notes.push(`gc ${(mark + sweep).toFixed(1)}/${gcTheirs.toFixed(1)}`);
  assert.ok(mark > 0 && sweep > 0, `marking ${mark.toFixed(1)} %, sweeping ${sweep.toFixed(1)} %`);
  assert.ok(Math.abs(mark + sweep - gcTheirs) <= TOL, `GC: rbtrace ${(mark + sweep).toFixed(1)} %, GC.stat(:time) ${gcTheirs.toFixed(1)} %`);
  // Lines exact: every backtrace Ruby's sampler saw is one of ours, labels and lines alike
  // (its samples fall at the VM's safe points, so it sees fewer distinct stacks than we do).
  const ours = new Set(stacks.map((s) => asBacktrace(s.frames)));
  const seen = Object.entries(o.seen);
  const n = seen.reduce((a, [, v]) => a + v, 0);
  const found = seen.filter(([bt]) => ours.has(bt)).reduce((a, [, v]) => a + v, 0);
  t.diagnostic(`${notes.join(' ')}; backtraces found ${found}/${n}`);
  assert.ok(n >= 30, `Ruby's sampler got ${n} samples`);
  // 90 %: a backtrace the sampler saw once may fall between our samples.
  assert.ok(found / n >= 0.9, `${found} of ${n} of Ruby's backtraces among ours; missing: ${seen.filter(([bt]) => !ours.has(bt)).map(([bt]) => bt).slice(0, 3).join(' | ')}; ours e.g. ${[...ours].slice(0, 3).join(' | ')}`);
});

// -p on a ruby already running: its Ruby frames from the first samples on (the
// collector notes the target before any sample arrives). Oracle: the program's
// own caller_locations, printed from inside the method that then spins.
const SPIN_LINE = 6;
const SPIN_RB = `module Outer
  class Worker
    def spin
      $stdout.puts "#{Process.pid} #{caller_locations(0).map { |l| "#{l.label}:#{l.lineno}" }.join(';')}"
      $stdout.flush
      i = 0; i += 1 while true
    end

    def self.go
      [1].each { new.spin }
    end
  end
end
Outer::Worker.go
`;

for (const ruby of RUBIES) test(`${ruby.label}: -p on a running ruby, every sample's Ruby frames as its caller_locations says`, { skip: skipUnless(ruby) }, async () => {
  requireRuby(ruby);
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-rbspin-'));
  const script = join(dir, 'spin.rb');
  writeFileSync(script, SPIN_RB);
  const [cmd, ...args] = ruby.argv([script]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]); });
      child.on('exit', () => reject(new Error(`the ruby ended before it spun: ${out}`)));
    });
    const pid = line.slice(0, line.indexOf(' '));
    const bt = line.slice(line.indexOf(' ') + 1);
    // The loop's frame is at the loop's line; its callers where caller_locations saw them.
    const expected = bt.replace(/^spin:\d+/, `spin:${SPIN_LINE}`);
    // No --unwind: -p on a process running ruby gets the dwarf unwinder (auto).
    const r = await runRbtrace(['profile', '-F', '199', '-d', '3', '-p', pid, '--json', ...REPORT_ON_STDOUT]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
    const stacks = (JSON.parse(lines[lines.length - 1]) as { stacks: JsonStack[] }).stacks;
    const total = stacks.reduce((a, s) => a + s.count, 0);
    const same = stacks.filter((s) => asBacktrace(s.frames.map((f) => f.name)) === expected).reduce((a, s) => a + s.count, 0);
    // 3 s at 199 Hz of a ruby spinning (>= a fifth of a CPU on a loaded machine): >= 100.
    assert.ok(total >= 100, `only ${total} samples`);
    // 95 %: Ruby's timer thread (another thread, native frames only) may be sampled a few times.
    assert.ok(same / total >= 0.95, `${same} of ${total} samples are ${expected}; others: ${stacks.filter((s) => asBacktrace(s.frames.map((f) => f.name)) !== expected).map((s) => `${s.count} ${s.frames.map((f) => f.name).join(';')}`).slice(0, 3).join(' | ')}`);
  } finally {
    child.kill('SIGKILL');
  }
});
