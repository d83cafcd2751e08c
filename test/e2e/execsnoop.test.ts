// execsnoop end to end: real BPF programs, real execs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecRecord } from '../../src/tools/execsnoop/collect.js';
import { ROOT, RBTRACE, buildC, leftoverPrograms, runRbtrace, settledLeftovers, startRbtrace, sleep } from '../helpers.js';

// Names only execsnoop's object uses (rbtrace_fork/rbtrace_exit are in every tool's).
const OUR_PROGRAMS = [
  'sched_exec', 'tp_enter_execve', 'tp_enter_execveat', 'tp_exit_execve', 'tp_exit_execveat',
  'kp_enter_execve', 'kp_exit_execve', 'fe_enter_execve', 'fe_exit_execve',
];

type Exec = ExecRecord;

/** Every line is a record: with -- CMD they are on stderr (the command owns stdout), which holds nothing else. */
function records(text: string): Exec[] {
  return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const TRICKY_ARGS = ['two words', 'say "hi"', "it's", 'héllo wörld ✓', '', 'tab\there', 'new\nline', '$HOME', '*'];

// Each attach path must give the same argv. Here: sched (the default) and
// tracepoint (what -x uses on this kernel). The kernel matrix (test/vm)
// sets RBTRACE_ATTACH to run them on fentry or kprobe instead.
const FORCED = process.env.RBTRACE_ATTACH;
for (const path of FORCED ? [FORCED] : ['sched', 'tracepoint']) {
  test(`[${path}] sees a command with its exact argv, comm and ppid`, async () => {
    const forty = Array.from({ length: 40 }, (_, i) => `arg${i}`);
    const r = await runRbtrace(['execsnoop', '--json', '--attach', path, '--', '/bin/true', ...TRICKY_ARGS, ...forty]);
    assert.equal(r.code, 0, r.stderr);
    const recs = records(r.stderr);
    assert.equal(recs.length, 1, r.stderr);
    const e = recs[0];
    assert.deepEqual(e.args, ['/bin/true', ...TRICKY_ARGS, ...forty]);
    assert.equal(e.comm, 'true');
    assert.equal(e.ret, 0);
    assert.equal(e.filename, '/bin/true');
    assert.equal(e.uid, 0);
    assert.ok(!Number.isNaN(Date.parse(e.time)));
  });

  test(`[${path}] a child's exec has the parent's pid as ppid`, async () => {
    const r = await runRbtrace(['execsnoop', '--json', '--attach', path, '--', '/bin/sh', '-c', '/bin/true a; /bin/true b']);
    assert.equal(r.code, 0, r.stderr);
    const recs = records(r.stderr);
    assert.equal(recs.length, 3, r.stderr);
    const [sh, a, b] = recs;
    assert.deepEqual(sh.args, ['/bin/sh', '-c', '/bin/true a; /bin/true b']);
    assert.deepEqual(a.args, ['/bin/true', 'a']);
    assert.deepEqual(b.args, ['/bin/true', 'b']);
    assert.equal(a.ppid, sh.pid);
    assert.equal(b.ppid, sh.pid);
    assert.equal(a.comm, 'true');
  });

  test(`[${path}] long arguments are cut at 256 bytes and marked; --max-args limits the count`, async () => {
    const exact = 'x'.repeat(256);
    const long = 'y'.repeat(300);
    const r = await runRbtrace(['execsnoop', '--json', '--attach', path, '--max-args', '4', '--', '/bin/true', exact, long, 'c', 'd', 'e']);
    assert.equal(r.code, 0, r.stderr);
    const [e] = records(r.stderr);
    assert.deepEqual(e.args, ['/bin/true', exact, 'y'.repeat(256), 'c']);
    assert.deepEqual(e.args_cut, [2]);
    assert.equal(e.args_truncated, true);
  });
}

test('a failed exec shows ENOENT with -x, and is hidden without it', async () => {
  const cmd = ['--', '/bin/sh', '-c', '/nonexistent/prog 2>/dev/null; exit 0'];
  const withX = await runRbtrace(['execsnoop', '--json', '-x', ...cmd]);
  assert.equal(withX.code, 0, withX.stderr);
  const failed = records(withX.stderr).filter((e) => e.ret !== 0);
  assert.equal(failed.length, 1, withX.stderr);
  assert.equal(failed[0].ret, -2);
  assert.equal(failed[0].errno, 'ENOENT');
  assert.deepEqual(failed[0].args, ['/nonexistent/prog']);

  const text = await runRbtrace(['execsnoop', '-x', ...cmd]);
  assert.match(text.stderr, /^sh\s+\d+\s+\d+\s+ENOENT \/nonexistent\/prog$/m);

  const without = await runRbtrace(['execsnoop', '--json', ...cmd]);
  assert.equal(records(without.stderr).filter((e) => e.ret !== 0).length, 0);
});

test('execveat is caught on the default and the syscall path', async () => {
  const prog = buildC(`
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
/* The strings live on the stack: the syscall paths read argv without
 * faulting pages in, so strings in a never-touched page would read empty. */
int main(void) {
  char a0[] = "true", a1[] = "via-execveat";
  char *argv[] = { a0, a1, 0 };
  char *envp[] = { 0 };
  syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, envp, 0);
  return 1;
}`, 'execveat');
  for (const extra of [[], ['-x']]) {
    const r = await runRbtrace(['execsnoop', '--json', ...extra, '--', prog]);
    assert.equal(r.code, 0, r.stderr);
    const recs = records(r.stderr);
    assert.deepEqual(recs.map((e) => e.args), [[prog], ['true', 'via-execveat']], `execsnoop ${extra.join(' ')}`);
  }
});

test('text output: header, escaped control characters, -q quoting, -t and -T columns, -U', async () => {
  const r = await runRbtrace(['execsnoop', '-t', '-T', '-U', '--', '/bin/true', 'a b', 'new\nline', '\x1b[31m']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0], /^TIME\s+TIME\(s\)\s+UID\s+PCOMM\s+PID\s+PPID\s+RET ARGS$/);
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[1], /^\d\d:\d\d:\d\d\s+\d+\.\d{3}\s+0\s+true\s+\d+\s+\d+\s+0 \/bin\/true a b new\\nline \\x1b\[31m$/);

  const q = await runRbtrace(['execsnoop', '-q', '--', '/bin/true', 'a b', 'say "x"']);
  assert.match(q.stderr, /0 "\/bin\/true" "a b" "say \\"x\\""$/m);
});

test('-n, -l and -u filter', async () => {
  const cmd = ['--', '/bin/sh', '-c', '/bin/true alpha; /bin/echo beta >/dev/null'];
  const byName = records((await runRbtrace(['execsnoop', '--json', '-n', '^ech', ...cmd])).stderr);
  assert.deepEqual(byName.map((e) => e.comm), ['echo']);
  // -l matches any argument: the shell's own command line contains 'alpha' too.
  const byArg = records((await runRbtrace(['execsnoop', '--json', '-l', '^alph', ...cmd])).stderr);
  assert.deepEqual(byArg.map((e) => e.args), [['/bin/true', 'alpha']]);
  const root = records((await runRbtrace(['execsnoop', '--json', '-u', '0', ...cmd])).stderr);
  assert.equal(root.length, 3);
  const nobody = records((await runRbtrace(['execsnoop', '--json', '-u', 'nobody', ...cmd])).stderr);
  assert.equal(nobody.length, 0);
});

test('-- CMD passes the exit status through, and 128+N for a signal', async () => {
  assert.equal((await runRbtrace(['execsnoop', '--', '/bin/sh', '-c', 'exit 7'])).code, 7);
  assert.equal((await runRbtrace(['execsnoop', '--', '/bin/sh', '-c', 'kill -TERM $$'])).code, 143);
  assert.equal((await runRbtrace(['execsnoop', '--', '/bin/true'])).code, 0);
});

test('-p traces only that process', async () => {
  // A shell that waits for a line on stdin, then execs; rbtrace watches its pid only.
  const child = spawn('/bin/bash', ['-c', 'read -r _; exec /bin/echo from-victim'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const r = startRbtrace(['execsnoop', '--json', '-v', '-p', String(child.pid)]);
  try {
    await r.ready();
  } catch (err) {
    child.kill();
    throw err;
  }
  execFileSync('/bin/true', ['not-the-victim']);
  child.stdin!.write('go\n');
  await new Promise((res) => child.on('exit', res));
  await r.waitFor(() => r.stdout.includes('from-victim'), 10000, 'the victim exec');
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(records(f.stdout).map((e) => e.args), [['/bin/echo', 'from-victim']]);
});

for (const [signal, extra] of [['SIGINT', []], ['SIGTERM', []], ['SIGHUP', []], ['SIGINT', ['-x']], ['SIGTERM', ['-x']], ['SIGHUP', ['-x']]] as const) {
  test(`nothing stays attached after ${signal} (${extra.length ? 'syscall path' : 'sched path'})`, async () => {
    const r = startRbtrace(['execsnoop', '-v', ...extra]);
    await r.ready();
    assert.ok(leftoverPrograms(OUR_PROGRAMS).length > 0, 'programs are loaded while tracing');
    execFileSync('/bin/true');
    r.signal(signal);
    const f = await r.finished;
    assert.equal(f.code, 0, f.stderr);
    assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  });
}

test('nothing stays attached after -- CMD ends', async () => {
  const r = await runRbtrace(['execsnoop', '--', '/bin/true']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('| head -1 ends quietly with status 0', async () => {
  // head exits after the header; rbtrace notices at its next write (the
  // next exec) and must end with status 0 and nothing on stderr.
  const script = `(for i in $(seq 1 200); do /bin/true $i; sleep 0.05; done) & gen=$!
node ${RBTRACE} execsnoop | head -1
echo "status=\${PIPESTATUS[0]}"
kill $gen 2>/dev/null; wait`;
  const r = spawnSync('/bin/bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60000 });
  assert.match(r.stdout, /^PCOMM\s+PID\s+PPID\s+RET ARGS\nstatus=0\n$/, r.stdout + r.stderr);
  assert.equal(r.stderr, '');
  await sleep(100);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('bad input: one line, the right exit status, no stack trace', async () => {
  const cases: [string[], number, RegExp, NodeJS.ProcessEnv?][] = [
    [['execsnoop', '--bogus'], 2, /^rbtrace execsnoop: unknown option '--bogus' \(see rbtrace execsnoop --help\)$/],
    [['no-such-tool'], 2, /^rbtrace: unknown command 'no-such-tool'/],
    [['execsnoop', '-p', 'abc'], 2, /^rbtrace execsnoop: -p wants a process id from 1 to 4194304, got 'abc'/],
    [['execsnoop', '-p', '4000000'], 1, /^rbtrace execsnoop: no process with pid 4000000/],
    [['execsnoop', '--max-args', '0'], 2, /^rbtrace execsnoop: --max-args wants a whole number from 1 to 128/],
    [['execsnoop', '-d', 'soon'], 2, /^rbtrace execsnoop: -d wants a number of seconds/],
    [['execsnoop', '-n', '('], 2, /^rbtrace execsnoop: -n: bad regular expression/],
    [['execsnoop', '--', 'no-such-command-xyz'], 1, /^rbtrace execsnoop: command not found: no-such-command-xyz/],
    [['execsnoop', 'ls'], 2, /^rbtrace execsnoop: unexpected argument 'ls' \(to trace a command, put it after --/],
    [['execsnoop', '-p', '1', '--', '/bin/true'], 2, /^rbtrace execsnoop: -p and -- CMD cannot be used together/],
    [['execsnoop', '-d', '1'], 1, /^rbtrace execsnoop: this kernel has no BTF \(\/nonexistent\/vmlinux is missing\)/, { RBTRACE_BTF_PATH: '/nonexistent/vmlinux' }],
    [['execsnoop', '--attach', 'warp', '-d', '0'], 2, /^rbtrace execsnoop: attach path 'warp' is not one of this tool's/],
  ];
  for (const [args, code, re, env] of cases) {
    const r = await runRbtrace(args, { env });
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trimEnd(), re, args.join(' '));
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('a user without privileges gets the one-line error', () => {
  const user = 'rbtrace-test';
  if (spawnSync('id', ['-u', user]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  const r = spawnSync('runuser', ['-u', user, '--', process.execPath, RBTRACE, 'execsnoop', '-d', '1'], { encoding: 'utf8', cwd: '/', timeout: 30000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, 'rbtrace execsnoop: loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (run it with sudo)\n');
});

// Issue 10, item 3: on the syscall paths the argv loop ends at the array's
// 128 slots, so with --max-args 128 a 129th argument went unseen.
test('--max-args 128 marks a 129th argument on every path', async () => {
  const args = Array.from({ length: 128 }, (_, i) => String(i + 2));
  for (const extra of [[], ['-x']]) {
    for (const [n, truncated] of [[128, true], [127, undefined]] as const) {
      const r = await runRbtrace(['execsnoop', '--json', ...extra, '--max-args', '128', '--', '/bin/true', ...args.slice(0, n)]);
      assert.equal(r.code, 0, r.stderr);
      const [e] = records(r.stderr);
      assert.equal(e.args.length, 128, `${extra.join(' ')} ${n + 1} args`);
      assert.equal(e.args_truncated, truncated, `${extra.join(' ')} ${n + 1} args`);
    }
    const text = await runRbtrace(['execsnoop', ...extra, '--max-args', '128', '--', '/bin/true', ...args]);
    assert.match(text.stderr, / 128 \.\.\.$/m, 'text: a lone ... at the end');
  }
});

// Issue 10, item 4: argument bytes that are not UTF-8 came out as U+FFFD.
test('bytes that are not UTF-8: exact in JSON (args_base64), escaped in text, on every path', async () => {
  const py = 'import os; os.execv(b"/bin/true", [b"true", b"\\xff\\xfe", b"ok", "é".encode()])';
  for (const extra of [[], ['-x']]) {
    const r = await runRbtrace(['execsnoop', '--json', ...extra, '--', '/usr/bin/python3', '-c', py]);
    assert.equal(r.code, 0, r.stderr);
    const t = records(r.stderr).find((e) => e.comm === 'true');
    assert.ok(t, r.stderr);
    assert.deepEqual(t.args, ['true', '\ufffd\ufffd', 'ok', 'é']);
    assert.deepEqual(t.args_base64?.map((a) => [...Buffer.from(a, 'base64')]), [[...Buffer.from('true')], [0xff, 0xfe], [...Buffer.from('ok')], [0xc3, 0xa9]]);
    const python = records(r.stderr).find((e) => e.comm === 'python3');
    assert.equal(python?.args_base64, undefined, 'valid UTF-8: no args_base64');

    const text = await runRbtrace(['execsnoop', ...extra, '--', '/usr/bin/python3', '-c', py]);
    assert.match(text.stderr, /^true\s+\d+\s+\d+\s+0 true \\xff\\xfe ok é$/m);
  }
  // A name that is not UTF-8: filename and comm are kept exactly too.
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-execsnoop-'));
  const odd = Buffer.concat([Buffer.from(dir + '/t'), Buffer.from([0xe9])]);
  execFileSync('/usr/bin/python3', ['-c', `import os,sys; os.symlink(b"/bin/true", bytes.fromhex(sys.argv[1]))`, odd.toString('hex')]);
  const r = await runRbtrace(['execsnoop', '--json', '--', '/usr/bin/python3', '-c', `import os,sys; p=bytes.fromhex(sys.argv[1]); os.execv(p, [p])`, odd.toString('hex')]);
  const t = records(r.stderr).at(-1)!;
  assert.deepEqual(Buffer.from(t.filename_base64!, 'base64'), odd);
  assert.deepEqual(Buffer.from(t.comm_base64!, 'base64'), Buffer.from([0x74, 0xe9]));
});

// Issue 10, item 5: the default path reads argv from the new image, where
// an interpreter has replaced argv[0], and names a file opened by descriptor
// /dev/fd/N. It says so (interpreter, filename_by_fd); -x shows what was passed.
test('#! scripts and fexecve: the default path says what it shows, -x shows what was passed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-execsnoop-'));
  const script = join(dir, 'script.sh');
  writeFileSync(script, '#!/bin/sh -e\nexit 0\n', { mode: 0o755 });
  const sched = records((await runRbtrace(['execsnoop', '--json', '--', script, 'arg1'])).stderr);
  assert.deepEqual(sched.map((e) => [e.filename, e.interpreter, e.args]), [[script, '/bin/sh', ['/bin/sh', '-e', script, 'arg1']]]);
  const sys = records((await runRbtrace(['execsnoop', '--json', '-x', '--', script, 'arg1'])).stderr);
  assert.deepEqual(sys.map((e) => [e.filename, e.interpreter, e.args]), [[script, undefined, [script, 'arg1']]]);

  const fexecve = 'import os; fd = os.open("/bin/true", os.O_RDONLY); os.execve(fd, ["tru", "x"], {})';
  const byFd = records((await runRbtrace(['execsnoop', '--json', '--', '/usr/bin/python3', '-c', fexecve])).stderr).at(-1)!;
  assert.match(byFd.filename, /^\/dev\/fd\/\d+$/);
  assert.equal(byFd.filename_by_fd, true);
  assert.deepEqual(byFd.args, ['tru', 'x']);
  const passed = records((await runRbtrace(['execsnoop', '--json', '-x', '--', '/usr/bin/python3', '-c', fexecve])).stderr).at(-1)!;
  assert.equal(passed.filename, '');
  assert.equal(passed.filename_by_fd, undefined);

  const man = readFileSync(join(ROOT, 'man/rbtrace-execsnoop.8'), 'utf8');
  for (const field of ['interpreter', 'filename_by_fd', 'args_base64', 'filename_base64', 'comm_base64']) {
    assert.match(man, new RegExp(`^\\.B ${field.replace(/_/g, '_')}$`, 'm'), `man page documents ${field}`);
  }
});
