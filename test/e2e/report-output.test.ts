// Where a tool's output goes (issue 25 item 4): with -- CMD the command owns
// stdout, so the report (text or --json) goes to stderr, as strace -c's
// summary does; -o FILE puts it in FILE, -o - on stdout. Without a command it
// is on stdout. The "Tracing..." line is on stderr for every tool, never in
// the report. The oracle for "the command's stdout is untouched" is the
// command's own output, run without rbtrace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildC, runRbtrace, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['strlat_entry', 'strlat_return', 'profile_sample'];
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-report-'));

test('syscount -o FILE -- ls: the table in FILE, the command\'s stdout exactly its own', async () => {
  const alone = execFileSync('ls', ['-1', '/etc'], { encoding: 'utf8' });
  const file = join(dir, 'o.txt');
  const r = await runRbtrace(['syscount', '-o', file, '--', 'ls', '-1', '/etc']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, alone, 'stdout is what ls prints, and nothing else');
  // With -- CMD, strace -c's table (ls's execve among its rows).
  const table = readFileSync(file, 'utf8');
  assert.match(table, /^% time\s+seconds\s+usecs\/call\s+calls\s+errors syscall$/m);
  assert.match(table, /^\s+[\d.]+\s+[\d.]+\s+\d+\s+1\s+execve$/m);
});

test('syscount -- sh -c "echo hello": stdout is exactly the command\'s, the table on stderr; --json alike; -o - puts it on stdout', async () => {
  const cmd = ['--', 'sh', '-c', 'echo hello'];
  const table = /^% time\s+seconds\s+usecs\/call\s+calls\s+errors syscall$/m;
  const text = await runRbtrace(['syscount', ...cmd]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout, 'hello\n');
  assert.match(text.stderr, table);
  assert.match(text.stderr, /^\s+[\d.]+\s+[\d.]+\s+\d+\s+1\s+write$/m, 'the echo\'s write counted');
  // NDJSON on stderr: with nothing to warn about, every line of it is a record.
  const json = await runRbtrace(['syscount', '--json', ...cmd]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.stdout, 'hello\n');
  const recs = json.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as { syscalls: { name: string; count: number }[] });
  assert.equal(recs.length, 1, json.stderr);
  assert.equal(recs[0].syscalls.find((x) => x.name === 'write')?.count, 1);
  // -o -: stdout explicitly, shared with the command (hello first: the table is written at its end).
  const shared = await runRbtrace(['syscount', '-o', '-', ...cmd]);
  assert.equal(shared.code, 0, shared.stderr);
  assert.ok(shared.stdout.startsWith('hello\n'), shared.stdout);
  assert.match(shared.stdout, table);
  assert.doesNotMatch(shared.stderr, table);
  // Without a command, stdout as ever; -i reports follow the same stream as the final one.
  const system = await runRbtrace(['syscount', '--no-strace', '-i', '0.3', '-d', '0.7']);
  assert.equal(system.code, 0, system.stderr);
  assert.ok((system.stdout.match(/^\[\d\d:\d\d:\d\d\]$/gm)?.length ?? 0) >= 2, system.stdout);
  assert.doesNotMatch(system.stderr, /SYSCALL/);
  const intervals = await runRbtrace(['syscount', '--no-strace', '-i', '0.3', '--', 'sleep', '0.7']);
  assert.equal(intervals.code, 0, intervals.stderr);
  assert.equal(intervals.stdout, '');
  assert.ok((intervals.stderr.match(/^\[\d\d:\d\d:\d\d\]$/gm)?.length ?? 0) >= 2, intervals.stderr);
});

test('--json -o FILE: the NDJSON in FILE, nothing on stdout', async () => {
  const file = join(dir, 'o.json');
  writeFileSync(file, 'an old report\n'); // a text file: replaced
  const r = await runRbtrace(['syscount', '--json', '-o', file, '--', '/bin/true']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(recs.at(-1).syscalls, 'a syscount record');
});

test('-o refuses a symbolic link, a binary and a directory: one line, exit 2, nothing run', async () => {
  const target = join(dir, 'victim');
  writeFileSync(target, 'keep me\n');
  const link = join(dir, 'link.txt');
  symlinkSync(target, link);
  const cases: [string, RegExp][] = [
    [link, /-o: will not replace .*link\.txt: it is a symbolic link/],
    ['/bin/true', /-o: will not replace \/bin\/true: it exists and is not a text report/],
    [dir, /it is a directory/],
  ];
  for (const [path, message] of cases) {
    const r = await runRbtrace(['syscount', '-o', path, '--', '/bin/true']);
    assert.equal(r.code, 2, `${path}: ${r.stderr}`);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  assert.equal(readFileSync(target, 'utf8'), 'keep me\n');
});

const PROG = buildC(`
__attribute__((noinline)) long work(long x) { return x + 1; }
int main(void) { volatile long s = 0; for (long i = 0; i < 300000; i++) s += work(i) & 1; return 0; }`, 'work');

test('the banner is on stderr for strlat and profile: before the report there with -- CMD; with -o -, the report alone on stdout', async () => {
  const s = await runRbtrace(['strlat', '--func', 'work', '--', PROG], { timeoutMs: 60000 });
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, '');
  assert.match(s.stderr, /^Tracing work in [^]*^work: count 300,000,/m, 'the banner, then the report');
  const so = await runRbtrace(['strlat', '--func', 'work', '-o', '-', '--', PROG], { timeoutMs: 60000 });
  assert.equal(so.code, 0, so.stderr);
  assert.match(so.stderr, /^Tracing work in /m);
  assert.doesNotMatch(so.stdout, /Tracing/);
  assert.match(so.stdout, /^work: count 300,000,/m, 'the report is on stdout');
  const p = await runRbtrace(['profile', '-F', '49', '-o', '-', '--', PROG], { timeoutMs: 60000 });
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stderr, /^Sampling the command and its children at 49 Hz/m);
  assert.doesNotMatch(p.stdout, /Sampling/);
  assert.match(p.stdout, /sample/, 'the top stacks (or "No samples") on stdout');
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});
