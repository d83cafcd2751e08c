// Terminal escape injection: a process that renames itself with
// prctl(PR_SET_NAME) to an escape sequence (or to a right-to-left override)
// must reach rbtrace's text output escaped, in every tool that prints comm,
// argv or paths. The names are real: set by the kernel from the process's own
// prctl call (or exec of a file so named), read back by the BPF programs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildC, runRbtrace, settledLeftovers } from '../helpers.js';

/** OSC 0 (set the window title), BEL, then SGR red: 13 bytes, within comm's 15. */
const OSC = '\x1b]0;PWN\x07\x1b[31m';
const OSC_SHOWN = '\\x1b]0;PWN\\x07\\x1b[31m';
/** "abc", RIGHT-TO-LEFT OVERRIDE, "gpj": reads as abcjpg on a terminal. */
const RLO = 'abc\u202egpj';
const RLO_SHOWN = 'abc\\u202egpj';

/** Controls, C1, bidi and other invisible format characters, separators: none may reach the terminal raw. */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\p{Cf}\u2028\u2029]/u;

function assertClean(text: string, what: string): void {
  const m = RAW.exec(text);
  assert.equal(m, null, `${what}: raw U+${m?.[0].codePointAt(0)?.toString(16)} at ${m?.index} in ${JSON.stringify(text)}`);
}

// Renames itself to argv[1] (hex), then forks a child that inherits the name
// and makes syscalls and allocations: the child's comm is the hostile name
// from its first event on.
const RENAMER = buildC(`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
  char name[16] = {0};
  for (int i = 0; argv[1][2 * i] && i < 15; i++) sscanf(argv[1] + 2 * i, "%2hhx", (unsigned char *)&name[i]);
  if (prctl(PR_SET_NAME, name) != 0) return 3;
  pid_t child = fork();
  if (child == 0) {
    for (int i = 0; i < 500; i++) {
      syscall(SYS_getppid);
      void *volatile p = malloc(100 + i); /* volatile: the compiler may not drop the pair */
      free(p);
    }
    _exit(0);
  }
  int st;
  waitpid(child, &st, 0);
  return 0;
}
`, 'renamer');

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');

for (const [label, name, shown] of [['escape sequence', OSC, OSC_SHOWN], ['U+202E', RLO, RLO_SHOWN]] as const) {
  test(`syscount -P: a comm renamed to an ${label} is printed escaped`, async () => {
    const r = await runRbtrace(['syscount', '-P', '--all', '--', RENAMER, hex(name)]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(shown), `the escaped name is shown:\n${r.stderr}`);
    assertClean(r.stdout, 'stdout');
    assertClean(r.stderr, 'stderr');
    // JSON keeps the name exactly (JSON's own escaping).
    // -o -: the records alone on stdout (the renamer prints nothing).
    const j = await runRbtrace(['syscount', '-P', '--all', '--json', '-o', '-', '--', RENAMER, hex(name)]);
    assert.equal(j.code, 0, j.stderr);
    const comms = j.stdout.trim().split('\n').flatMap((l) => (JSON.parse(l) as { processes: { comm: string }[] }).processes.map((p) => p.comm));
    assert.ok(comms.includes(name), `JSON has the exact name: ${JSON.stringify(comms)}`);
    assert.deepEqual(await settledLeftovers(['tb_enter', 'tb_exit', 'rt_enter', 'rt_exit', 'fe_enter', 'fe_exit']), []);
  });

  test(`mallocstat -P: a comm renamed to an ${label} is printed escaped`, async () => {
    // The renamed child mallocs at once after its fork: --all-processes counts it from its first call.
    const r = await runRbtrace(['mallocstat', '-P', '--all-processes', '--', RENAMER, hex(name)]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`(${shown})`), `the escaped name is shown:\n${r.stderr}`);
    assertClean(r.stdout, 'stdout');
    assertClean(r.stderr, 'stderr');
    assert.deepEqual(await settledLeftovers(['ms_malloc', 'ms_free', 'ms_return']), []);
  });

  test(`execsnoop: a program file named with an ${label}, and such arguments, are printed escaped`, async () => {
    // exec of a file so named makes it the comm (the kernel takes the basename).
    const dir = mkdtempSync(join(tmpdir(), 'rbtrace-escape-'));
    const link = join(dir, name);
    symlinkSync('/bin/true', link);
    const r = await runRbtrace(['execsnoop', '--', link, name, `x${name}\n`]);
    assert.equal(r.code, 0, r.stderr);
    const row = r.stderr.split('\n').find((l) => l.startsWith(shown));
    assert.ok(row, `a row whose PCOMM is the escaped name:\n${r.stderr}`);
    assert.ok(row.includes(`${shown} x${shown}\\n`), `arguments escaped: ${row}`);
    assertClean(r.stdout, 'stdout');
    assertClean(r.stderr, 'stderr');
  });
}

test('gcstat: a ruby renamed by prctl to an escape sequence is printed escaped', async () => {
  // Fiddle calls prctl(PR_SET_NAME) from the ruby process itself, before its GCs.
  const script = `require "fiddle"
prctl = Fiddle::Function.new(Fiddle::Handle::DEFAULT["prctl"], [Fiddle::TYPE_INT, Fiddle::TYPE_VOIDP, Fiddle::TYPE_LONG, Fiddle::TYPE_LONG, Fiddle::TYPE_LONG], Fiddle::TYPE_INT)
exit 3 unless prctl.call(15, ["${hex(OSC)}"].pack("H*"), 0, 0, 0).zero?
20.times { GC.start }
sleep 0.6`;
  const r = await runRbtrace(['gcstat', '--no-chart', '-i', '0.25', '--', 'ruby', '--disable-gems', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.includes(` ${OSC_SHOWN} `), `the escaped name is in the COMM column:\n${r.stderr}`);
  assertClean(r.stdout, 'stdout');
  assertClean(r.stderr, 'stderr');
  assert.deepEqual(await settledLeftovers(['gc_mark_begin', 'gc_mark_end', 'gc_sweep_begin', 'gc_sweep_end']), []);
});

test('strlat: a library path holding an escape sequence and U+202E is printed escaped', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'rbtrace-escape-')), `${OSC}${RLO}`);
  mkdirSync(dir);
  const lib = join(dir, 'libc.so.6');
  copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', lib);
  const r = await runRbtrace(['strlat', '--lib', lib, '--func', 'malloc', '-d', '0.3']);
  assert.equal(r.code, 0, r.stderr);
  // The banner names the library: on stderr, as every tool's banner is.
  assert.ok(r.stderr.includes(`/${OSC_SHOWN}${RLO_SHOWN}/libc.so.6`), r.stderr);
  assertClean(r.stdout, 'stdout');
  assertClean(r.stderr, 'stderr');
  assert.deepEqual(await settledLeftovers(['strlat_entry', 'strlat_return']), []);
});

test('error lines escape what they quote: a hostile --func, a value with a newline', async () => {
  const f = await runRbtrace(['strlat', '--lib', 'c', '--func', `no_such_${OSC}`, '-d', '0.3']);
  assert.ok(f.code === 1 || f.code === 2, `exit ${f.code}: ${f.stderr}`);
  assert.equal(f.stderr.trimEnd().split('\n').length, 1, f.stderr);
  assert.ok(f.stderr.includes(`no_such_${OSC_SHOWN}`), f.stderr);
  assertClean(f.stderr, 'stderr');
  const p = await runRbtrace(['syscount', '-p', `12\n${RLO}`]);
  assert.equal(p.code, 2);
  assert.equal(p.stderr, `rbtrace syscount: -p wants a process id from 1 to 4194304, got '12\\n${RLO_SHOWN}' (e.g. -p 1234)\n`);
});
