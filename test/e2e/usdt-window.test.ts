// rubyobjnew and rubycalls --window: the probes stay attached and their USDT semaphores
// are lowered between windows (src/core/bpf/usdt-windows.ts). Checked from
// outside rbtrace: the semaphores' values and the breakpoints read from the
// ruby's memory (addresses from libruby's own SDT notes and the maps), the
// kernel log, and the counts against the loop's known allocations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { ElfFile } from '../../src/core/elf/elf.js';
import { REPORT_ON_STDOUT, runRbtrace, settledLeftovers, sleep, startRbtrace } from '../helpers.js';
import { addressOf, bytesAt, mappedFile } from '../process-memory.js';

const OUR_PROGRAMS = ['object_create', 'string_create', 'array_create', 'hash_create', 'symbol_create', 'cmethod_entry', 'method_entry'];
const PROBES = ['object__create', 'string__create', 'array__create', 'hash__create', 'symbol__create'];
// Four allocations an iteration, in this order: a String, an Array, a Hash, a Foo.
const LOOP = 'class Foo; def initialize(i) = @i = i; end; ';
/**
 * Ruby running `body` for 1.5 s of wall time (so every machine sees several
 * windows), then printing its iteration count on stderr. The clock is read
 * every 10000 iterations (one C call, not one of the counted ones).
 */
const timedLoop = (body: string): string => `t = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 1.5; i = 0
while i % 10000 != 0 || Process.clock_gettime(Process::CLOCK_MONOTONIC) < t
  ${body}
  i += 1
end
$stderr.puts "iterations #{i}"`;
const iterations = (stderr: string): number => Number(/iterations (\d+)/.exec(stderr)?.[1]);
/** The last JSON record rbtrace printed (the final report). */
const lastRecord = (stdout: string) => JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);


/** The five probes' semaphores (values) and the first byte of each string__create site, in `pid`. */
function probeState(pid: number): { semaphores: number[]; sites: number[] } {
  const lib = mappedFile(pid, /libruby/);
  const elf = ElfFile.open(lib);
  const notes = elf.sdtNotes().filter((n) => n.provider === 'ruby' && PROBES.includes(n.name));
  const sems = [...new Set(notes.map((n) => n.semaphore))];
  return {
    semaphores: sems.map((s) => bytesAt(pid, addressOf(pid, lib, elf.fileOffset(s)!), 2).readUInt16LE(0)),
    sites: notes.filter((n) => n.name === 'string__create').map((n) => bytesAt(pid, addressOf(pid, lib, elf.fileOffset(n.pc)!), 1)[0]),
  };
}

const refCtrWarnings = (): number => execFileSync('dmesg', { encoding: 'utf8' }).split('\n').filter((l) => /ref_ctr/.test(l)).length;

test('--window -p: probes attached but their semaphores 0 between windows; all put back, nothing left, at the end', { skip: process.arch !== 'x64' && 'reads int3 (x86_64)' }, async () => {
  const warnings = refCtrWarnings();
  const ruby = spawn('ruby', ['--disable-gems', '-e', `${LOOP}loop { s = "abc"; a = [1, s]; h = { k: a }; Foo.new(h) }`], { stdio: 'ignore' });
  try {
    await sleep(300);
    // A window of 1 ms every 100 s: the first opens long after this test has looked.
    const r = startRbtrace(['rubyobjnew', '-v', '--json', '--window', '1', '--every', '100000', '-p', String(ruby.pid)]);
    await r.ready();
    await sleep(300);
    const during = probeState(ruby.pid!);
    r.signal('SIGINT');
    const f = await r.finished;
    assert.equal(f.code, 0, f.stderr);
    const after = probeState(ruby.pid!);
    assert.ok(during.sites.length > 0 && during.sites.every((b) => b === 0xcc), `the probes are attached (int3 at every string__create site): ${during.sites}`);
    assert.deepEqual(during.semaphores, during.semaphores.map(() => 0), 'every semaphore is 0 between windows: Ruby skips the sites');
    assert.deepEqual(after.semaphores, after.semaphores.map(() => 0), 'none raised after rbtrace is gone');
    assert.ok(after.sites.every((b) => b !== 0xcc), 'no breakpoint left');
    assert.equal(ruby.exitCode, null, 'the ruby runs on');
    assert.equal(refCtrWarnings(), warnings, 'no new ref_ctr warning in the kernel log (a semaphore lowered below what the kernel expects)');
  } finally {
    ruby.kill('SIGKILL');
  }
});

test('--window 10 --every 250 -- CMD: a small sample of the loop, each of its four classes a quarter of what was seen', async () => {
  const r = await runRbtrace(['rubyobjnew', '--json', ...REPORT_ON_STDOUT, '--window', '10', '--every', '250', '--',
    'ruby', '--disable-gems', '-e', LOOP + timedLoop('s = "abc"; a = [i, s]; h = { k: a }; Foo.new(h)')], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const n = iterations(r.stderr);
  const rec = lastRecord(r.stdout);
  assert.ok(rec.windows.windows >= 3, `windows opened: ${JSON.stringify(rec.windows)}`);
  const seen = (klass: string, probe: string): number => rec.allocations.find((a: { class: string; probe: string }) => a.class === klass && a.probe === probe)?.count ?? 0;
  const four = [seen('String', 'string'), seen('Array', 'array'), seen('Hash', 'hash'), seen('Foo', 'object')];
  const total = four.reduce((a, b) => a + b, 0);
  // Seen: the windows only (probes live ~4 % of the time, and the loop runs
  // ~100 times slower while they are): far fewer than the loop's 4n.
  assert.ok(total >= 100 && total < 0.1 * 4 * n, `seen ${total} of the loop's ${4 * n} allocations: ${four}`);
  // Each class a quarter, exactly but for the edges: what a window counts is
  // a run of the loop's allocations in their order (the BPF gate opens and
  // shuts between two of them), so each window adds the same to every class
  // give or take one.
  assert.ok(Math.max(...four) - Math.min(...four) <= rec.windows.windows, `the four classes ${four}: more than one apart per window (${rec.windows.windows})`);
  const foo = rec.allocations.find((a: { class: string }) => a.class === 'Foo');
  assert.ok(Math.abs(foo.share_pct - 25) <= 2, `Foo's share ${foo.share_pct} %`);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('rubycalls --window 10 --every 250 -- CMD: a small sample of the calls, the loop\'s two C methods half each', async () => {
  const r = await runRbtrace(['rubycalls', '--json', ...REPORT_ON_STDOUT, '--window', '10', '--every', '250', '--',
    'ruby', '--disable-gems', '-e', timedLoop('"a".upcase; i.to_s')], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const n = iterations(r.stderr);
  const rec = lastRecord(r.stdout);
  assert.ok(rec.windows.windows >= 3, `windows opened: ${JSON.stringify(rec.windows)}`);
  const calls = (m: string): number => rec.methods.find((x: { method: string }) => x.method === m)?.count ?? 0;
  const two = [calls('String#upcase'), calls('Integer#to_s')];
  const total = two[0] + two[1];
  assert.ok(total >= 100 && total < 0.1 * 2 * n, `seen ${total} of the loop's ${2 * n} calls: ${two}`);
  // Half each, one apart at most per window, as for rubyobjnew's quarters.
  assert.ok(Math.abs(two[0] - two[1]) <= rec.windows.windows, `String#upcase and Integer#to_s: ${two} over ${rec.windows.windows} windows`);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('--window: nothing counted outside the windows, a ruby\'s boot included (its probes fire until rbtrace first lowers them)', async () => {
  // The first window opens 4990 ms in: long after this ruby is gone.
  for (const tool of ['rubyobjnew', 'rubycalls']) {
    const r = await runRbtrace([tool, '--json', ...REPORT_ON_STDOUT, '--window', '10', '--every', '5000', '--',
      'ruby', '--disable-gems', '-e', '"a".upcase; 1.to_s; sleep 0.2'], { timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stderr);
    const rec = lastRecord(r.stdout);
    assert.equal(rec.windows.windows, 0, `${tool}: ${JSON.stringify(rec.windows)}`);
    const rows = rec.allocations ?? rec.methods;
    assert.deepEqual(rows, [], `${tool} counted outside any window: ${JSON.stringify(rows).slice(0, 300)}`);
  }
});

test('--window bad input: one-line usage errors, exit 2', async () => {
  for (const args of [
    ['--window', '10'], // system-wide
    ['--window', '1000', '--every', '1000', '--', 'true'],
    ['--every', '100', '--', 'true'],
    ['--window', '10', '--sample', '10', '--', 'true'],
    ['--window', '10', '--all-processes', '--', 'true'],
    ['--window', '0', '--', 'true'],
  ]) {
    const r = await runRbtrace(['rubyobjnew', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  for (const args of [['--window', '10', '-L', '--', 'true'], ['--window', '10']]) {
    const r = await runRbtrace(['rubycalls', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
