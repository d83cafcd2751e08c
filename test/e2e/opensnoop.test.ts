// opensnoop end to end: real BPF programs, real programs opening files, and
// strace as the oracle in the same run (rbtrace traces strace, which traces
// the program: both see the very same calls).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpenRecord } from '../../src/tools/opensnoop/views.js';
import { buildC, runRbtrace, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['tp_enter_openat', 'tp_exit_openat', 'rt_enter', 'rt_exit', 'fx_openat'];
const PYTHON = '/usr/bin/python3';

/** rbtrace's NDJSON lines: with -- CMD on stderr (the command owns stdout), among rbtrace's warnings if any. */
function jsonLines(stdout: string): Record<string, any>[] {
  return stdout.split('\n').filter((l) => l.startsWith('{"')).map((l) => JSON.parse(l));
}

function records(stdout: string): OpenRecord[] {
  return jsonLines(stdout).filter((r) => r.syscall !== undefined) as OpenRecord[];
}

function lostOf(stdout: string): number {
  return jsonLines(stdout).reduce((m, r) => Math.max(m, r.lost_events ?? 0), 0);
}

/** One call as strace -xx printed it. */
interface StraceCall {
  syscall: string;
  path: string;
  flags: string[];
  mode?: string;
  result: string; // the fd, or the errno name
}

/** `openat(AT_FDCWD, "\x2f...", O_RDONLY|O_CLOEXEC) = 3` and the like; openat2's flags are in its struct. */
function parseStraceLine(line: string): StraceCall | undefined {
  const m = /^(open|openat|openat2)\((?:[^,]+, )?"((?:\\x[0-9a-f]{2})*)", (.*)\) += (-?\d+)(?: (E[A-Z0-9]+))?/.exec(line);
  if (!m) return undefined;
  const path = Buffer.from(m[2].replace(/\\x/g, ''), 'hex').toString('utf8');
  let flagText = m[3];
  let mode: string | undefined;
  if (m[1] === 'openat2') {
    flagText = /flags=([^,}]+)/.exec(m[3])![1];
  } else {
    const parts = m[3].split(', ');
    flagText = parts[0];
    mode = parts[1];
  }
  return { syscall: m[1], path, flags: flagText.split('|').sort(), mode, result: m[4] === '-1' ? m[5] : m[4] };
}

/** strace -ff's files, one per thread: tid -> its calls in order. */
function straceCalls(dir: string): Map<number, StraceCall[]> {
  const out = new Map<number, StraceCall[]>();
  for (const f of readdirSync(dir)) {
    const tid = Number(f.split('.').pop());
    const calls = readFileSync(join(dir, f), 'utf8').split('\n').map(parseStraceLine).filter((c): c is StraceCall => c !== undefined);
    out.set(tid, calls);
  }
  return out;
}

function asStrace(r: OpenRecord): StraceCall {
  return { syscall: r.syscall, path: r.path, flags: r.flags_text.split('|').sort(), mode: r.mode, result: r.errno ?? String(r.fd) };
}

/** rbtrace opensnoop -- strace ... CMD: each thread strace saw must show the same calls, in the same order. */
async function sameAsStrace(cmd: string[], opts: { cwd?: string; attach?: string } = {}): Promise<number> {
  const logs = mkdtempSync(join(tmpdir(), 'rbtrace-strace-'));
  const strace = ['strace', '-ff', '-qq', '-e', 'trace=open,openat,openat2', '-e', 'signal=none', '-s', '65536', '-xx', '-o', join(logs, 'log')];
  const r = await runRbtrace(['opensnoop', '--json', ...(opts.attach ? ['--attach', opts.attach] : []), '--', ...strace, ...cmd], { cwd: opts.cwd });
  assert.equal(r.code, 0, r.stderr);
  const ours = records(r.stderr);
  const theirs = straceCalls(logs);
  rmSync(logs, { recursive: true });
  assert.equal(lostOf(r.stderr), 0, 'no events lost');
  let total = 0;
  for (const [tid, calls] of theirs) {
    const seen = ours.filter((o) => o.tid === tid).map(asStrace);
    // Exact: same run, same calls; strace prints mode only with O_CREAT/O_TMPFILE, as we do.
    assert.deepEqual(seen, calls, `thread ${tid} of ${cmd.join(' ')}`);
    total += calls.length;
  }
  return total;
}

const FORCED = process.env.RBTRACE_ATTACH;
for (const path of FORCED ? [FORCED] : ['tracepoint', 'raw_tp']) {
  test(`[${path}] python3 importing json and sqlite3: the same opens as strace`, async () => {
    const n = await sameAsStrace([PYTHON, '-c', 'import json, sqlite3\ntry: open("/nonexistent/x")\nexcept OSError: pass'], { attach: path });
    assert.ok(n > 20, `${n} opens`);
  });
}

test('git status in a repository, tar and dpkg -L: the same opens as strace, thread by thread', async () => {
  const repo = mkdtempSync(join(tmpdir(), 'rbtrace-git-'));
  execFileSync('git', ['init', '-q'], { cwd: repo });
  writeFileSync(join(repo, 'a.txt'), 'a\n');
  mkdirSync(join(repo, 'sub'));
  writeFileSync(join(repo, 'sub', 'b.txt'), 'b\n');
  execFileSync('git', ['add', '.'], { cwd: repo });
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x'], { cwd: repo });
  writeFileSync(join(repo, 'a.txt'), 'changed\n');
  try {
    assert.ok(await sameAsStrace(['git', 'status', '--porcelain'], { cwd: repo }) > 10);
    assert.ok(await sameAsStrace(['tar', '-cf', '/dev/null', '-C', repo, '.']) > 3);
    assert.ok(await sameAsStrace(['dpkg', '-L', 'coreutils']) > 3);
  } finally {
    rmSync(repo, { recursive: true });
  }
});

test('relative names: made absolute against the cwd or dirfd of the call, never against a cwd changed since', async () => {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'rbtrace-rel-')));
  for (const d of ['d1', 'd2', 'd3']) mkdirSync(join(base, d));
  // open "a" in d1, chdir to d2 at once, open "b" there; "c" relative to an fd on d3.
  const py = `import os, time
os.chdir("${base}/d1")
try: open("a")
except OSError: pass
os.chdir("${base}/d2")
open("b", "w").close()
fd = os.open("${base}/d3", os.O_RDONLY | os.O_DIRECTORY)
os.close(os.open("c", os.O_WRONLY | os.O_CREAT, 0o640, dir_fd=fd))
time.sleep(0.5)`;
  try {
    const r = await runRbtrace(['opensnoop', '--json', '--', PYTHON, '-c', py]);
    assert.equal(r.code, 0, r.stderr);
    const recs = records(r.stderr);
    const a = recs.find((x) => x.path === 'a')!;
    assert.equal(a.errno, 'ENOENT');
    // Read after the chdir, /proc says d2: the inode check refuses it.
    assert.ok(a.full_path === `${base}/d1/a` || (a.full_path === null && a.unresolved === 'cwd changed'), JSON.stringify(a));
    const b = recs.find((x) => x.path === 'b')!;
    assert.equal(b.full_path, `${base}/d2/b`);
    assert.equal(b.flags_text, 'O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC');
    const c = recs.find((x) => x.path === 'c')!;
    assert.equal(c.full_path, `${base}/d3/c`);
    assert.equal(typeof c.dirfd, 'number');
    assert.equal(c.mode, '0640');
  } finally {
    rmSync(base, { recursive: true });
  }
});

// A static binary: no loader, so its opens are exactly the loop's.
const STORM = `
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]);
  for (long i = 0; i < n; i++) { int fd = open("/dev/null", O_RDONLY); if (fd >= 0) close(fd); }
  return 0;
}`;

test('an open storm: every open is either printed or counted as lost, never silently dropped', async () => {
  const prog = buildC(STORM, 'storm', ['-static']);
  const N = 50000;
  for (const pages of ['1', '16384']) {
    const r = await runRbtrace(['opensnoop', '--json', '-b', pages, '--', prog, String(N)], { timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stderr);
    const seen = records(r.stderr).filter((x) => x.path === '/dev/null').length;
    const lost = lostOf(r.stderr);
    assert.equal(seen + lost, N, `-b ${pages}: ${seen} seen + ${lost} lost`);
    // 4 KiB holds a few dozen records; 64 MiB all of them.
    if (pages === '1') {
      assert.ok(lost > 0, 'a 4 KiB buffer overflows');
      assert.match(r.stderr, /lost [\d,]+ events/);
    } else {
      assert.equal(lost, 0, r.stderr);
    }
  }
});

test('-x, -n, -f filter; text output escapes names; -e decodes flags', async () => {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'rbtrace-txt-')));
  const py = `import os
open("${base}/new\\nline\\x1b[31m", "w").close()
try: open("${base}/missing")
except OSError: pass`;
  try {
    const failed = records((await runRbtrace(['opensnoop', '--json', '-x', '--', PYTHON, '-c', py])).stderr);
    assert.ok(failed.length > 0);
    assert.ok(failed.every((x) => x.fd === -1 && x.errno));
    assert.ok(failed.some((x) => x.path === `${base}/missing` && x.errno === 'ENOENT'));
    const writes = records((await runRbtrace(['opensnoop', '--json', '-f', 'O_WRONLY', '--', PYTHON, '-c', py])).stderr);
    assert.deepEqual(writes.map((x) => x.path), [`${base}/new\nline\x1b[31m`]);
    const none = records((await runRbtrace(['opensnoop', '--json', '-n', 'no-such-comm', '--', PYTHON, '-c', py])).stderr);
    assert.equal(none.length, 0);

    const text = await runRbtrace(['opensnoop', '-e', '--', PYTHON, '-c', py]);
    const lines = text.stderr.trimEnd().split('\n');
    assert.match(lines[0], /^PID\s+COMM\s+FD ERR\s+FLAGS\s+MODE\s+PATH$/);
    assert.ok(lines.some((l) => /^\d+\s+python3\s+\d+ 0\s+O_WRONLY\|O_CREAT\|O_TRUNC\|O_CLOEXEC\s+0666 .*\/new\\nline\\x1b\[31m$/.test(l)), text.stderr);
    assert.ok(lines.some((l) => /^\d+\s+python3\s+-1 ENOENT\s+O_RDONLY\|O_CLOEXEC\s+n\/a\s+.*\/missing$/.test(l)), text.stderr);
  } finally {
    rmSync(base, { recursive: true });
  }
});

test('bad input: one line, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['opensnoop', '-b', '3'], /^rbtrace opensnoop: -b: 3 is not a power of two/],
    [['opensnoop', '-f', 'O_BOGUS'], /^rbtrace opensnoop: -f: unknown open flag 'O_BOGUS'/],
    [['opensnoop', '-i', '1'], /^rbtrace opensnoop: -i does not apply to opensnoop/],
    [['opensnoop', '-F', '--as-given', '-d', '0'], /^rbtrace opensnoop: -F and --as-given cannot be used together/],
  ];
  for (const [args, re] of cases) {
    const r = await runRbtrace(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trimEnd(), re);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  }
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});
