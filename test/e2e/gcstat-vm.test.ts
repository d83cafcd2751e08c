// gcstat on a Ruby without USDT probes (Debian 13's ruby3.3, run from its own
// root in its own mount namespace, as a container image would be): rows from
// the VM's own counters, read through /proc/PID/mem. Oracle: the same
// process's GC.stat, printed by the program after its last collection.
// Exact: the counters are the very words GC.stat reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFile } from '../../src/core/linux/procfiles.js';
import { rubyGcLayout } from '../../src/tools/gcstat/layout.js';
import { VmGcReader } from '../../src/tools/gcstat/vm-counters.js';
import { runRbtrace, sleep } from '../helpers.js';
import { ROOT_RUBY, requireRuby, skipUnless } from '../ruby-root.js';

const opts = { skip: skipUnless(ROOT_RUBY) };

// Minor and major collections of known number, allocation-driven ones too;
// GC.stat printed (to stderr) after the last one.
const PROGRAM = 'a = []; 300_000.times { a << "x" * 50 }; 5.times { GC.start(full_mark: false) }; 2.times { GC.start }; ' +
  's = GC.stat; $stderr.puts [s[:count], s[:major_gc_count], s[:minor_gc_count], s[:marking_time], s[:sweeping_time]].join(" ")';

interface Row { pid: number; source: string; collections: number; major: number; minor: number; mark_ns: number; sweep_ns: number; gc_ns: number }

const sum = (rows: Row[], f: (r: Row) => number) => rows.reduce((a, r) => a + f(r), 0);

test('gcstat -- CMD on ruby 3.3 without USDT probes: collections, major, minor and GC time equal the process\'s own GC.stat', opts, async () => {
  requireRuby(ROOT_RUBY);
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-gcvm-'));
  const out = join(dir, 'rows.json');
  // The sleep: rbtrace reads the counters every 20 ms (VM_POLL_MS); a
  // command's collections in its last 20 ms are not seen, as its memory is
  // gone at exit (said in the man page).
  const r = await runRbtrace(['gcstat', '--json', '-o', out, ...ROOT_RUBY.rbtraceArgs, '--assert', 'collections > 0',
    '--', ...ROOT_RUBY.argv(['--disable-gems', '-e', `${PROGRAM}; sleep 0.1`])]);
  assert.equal(r.code, 0, r.stderr);
  const oracle = r.stderr.split('\n').find((l) => /^\d+ \d+ \d+ \d+ \d+$/.test(l));
  assert.ok(oracle, r.stderr);
  const [count, major, minor, markMs, sweepMs] = oracle.split(' ').map(Number);
  const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
  assert.ok(rows.length > 0 && rows.every((x) => x.source === 'vm-counters'), JSON.stringify(rows));
  assert.equal(sum(rows, (x) => x.collections), count, 'collections = GC.count');
  assert.equal(sum(rows, (x) => x.major), major, 'major = GC.stat(:major_gc_count)');
  assert.equal(sum(rows, (x) => x.minor), minor, 'minor = GC.stat(:minor_gc_count)');
  assert.ok(major >= 2 && minor >= 5, oracle);
  // GC.stat(:marking_time) is the same nanoseconds, truncated to ms.
  assert.equal(Math.floor(sum(rows, (x) => x.mark_ns) / 1e6), markMs, 'mark time = GC.stat(:marking_time)');
  assert.equal(Math.floor(sum(rows, (x) => x.sweep_ns) / 1e6), sweepMs, 'sweep time = GC.stat(:sweeping_time)');
  assert.equal(sum(rows, (x) => x.gc_ns), sum(rows, (x) => x.mark_ns + x.sweep_ns));
});

test('gcstat -p on a running ruby 3.3: counts from attach, exact; --assert on major; --log refused', opts, async () => {
  requireRuby(ROOT_RUBY);
  // Collections before rbtrace starts are not counted (-p counts from now).
  const [cmd, ...args] = ROOT_RUBY.argv(['--disable-gems', '-e',
    `GC.start; $stdout.puts "ready"; $stdout.flush; $stdin.gets; ${PROGRAM}; $stdout.puts "done"; $stdout.flush; sleep 30`]);
  const ruby = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  ruby.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  ruby.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    while (!stdout.includes('ready')) await sleep(20);
    const pid = Number(execFileSync('pgrep', ['-n', '-f', 'ruby3.3 -C'], { encoding: 'utf8' }).trim());
    const before = new VmGcReader(pid, openFile(ROOT_RUBY.rbtraceArgs[1]), (rubyGcLayout(openFile(ROOT_RUBY.rbtraceArgs[1])) as { layout: never }).layout).read();
    assert.ok(before && before.count >= 1, 'the VM is read before rbtrace starts');
    const log = await runRbtrace(['gcstat', '--log', '-p', String(pid), ...ROOT_RUBY.rbtraceArgs]);
    assert.equal(log.code, 2, log.stderr);
    assert.match(log.stderr, /--log needs the USDT probes/);
    const dir = mkdtempSync(join(tmpdir(), 'rbtrace-gcvm-'));
    const out = join(dir, 'rows.json');
    const tracer = runRbtrace(['gcstat', '--json', '-o', out, '-d', '3', '-p', String(pid), ...ROOT_RUBY.rbtraceArgs, '--assert', 'major >= 2']);
    await sleep(800);
    ruby.stdin.write('\n');
    const r = await tracer;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(stdout.includes('done'), 'the program finished its collections within -d');
    const [count, major, minor] = stderr.trim().split('\n').pop()!.split(' ').map(Number);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
    assert.equal(sum(rows, (x) => x.collections), count - before.count, 'collections since attach = GC.count delta');
    assert.equal(sum(rows, (x) => x.major), major - before.major, 'major delta');
    assert.equal(sum(rows, (x) => x.minor), minor - before.minor, 'minor delta');
  } finally {
    ruby.kill();
  }
});

test('gcstat without -p or -- CMD on a ruby without probes: one line saying to give a process, exit 1', opts, async () => {
  requireRuby(ROOT_RUBY);
  const r = await runRbtrace(['gcstat', '-d', '1', ...ROOT_RUBY.rbtraceArgs]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /has no USDT probes, so gcstat reads the VM's counters of one process.*-p PID/);
});

test('the counters\' offsets on the host\'s ruby 3.1 (which has probes): GC.count, major, minor and GC.stat(:time) read from its memory', async () => {
  const ruby = spawn('ruby', ['--disable-gems', '-e',
    'a = []; 200_000.times { a << "y" * 40 }; GC.start; 3.times { GC.start(full_mark: false) }; s = GC.stat; puts [s[:count], s[:major_gc_count], s[:minor_gc_count], s[:time]].join(" "); $stdout.flush; sleep 30'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  ruby.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    while (!out.includes('\n')) await sleep(20);
    const lib = readFileSync(`/proc/${ruby.pid}/maps`, 'utf8').split('\n').find((l) => /libruby-3\.1/.test(l))!.split(/\s+/).pop()!;
    const file = openFile(lib);
    const found = rubyGcLayout(file);
    assert.ok('layout' in found, JSON.stringify(found));
    const c = new VmGcReader(ruby.pid!, file, found.layout).read();
    const [count, major, minor, timeMs] = out.trim().split(' ').map(Number);
    assert.ok(c);
    assert.deepEqual([c.count, c.major, c.minor, Math.floor(c.total_ns! / 1e6)], [count, major, minor, timeMs]);
    assert.equal(c.mark_ns, null, '3.1 keeps no marking time');
  } finally {
    ruby.kill();
  }
});
