// Oracle: execsnoop against strace's execve log (strace -f -ff -xx: every
// byte of every string, one file per process) on make -j2 of a small C
// project (make, gcc's drivers, as, ld: fork+exec chains, PATH searches that
// fail) and on #! scripts passing arguments that are not UTF-8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ExecRecord } from '../../src/tools/execsnoop/collect.js';
import { runRbtrace } from '../helpers.js';
import { straceExecs, type StraceExec } from './oracles.js';
import { tempDir } from './compare.js';

function records(stdout: string): ExecRecord[] {
  return stdout.split('\n').filter((l) => l.startsWith('{"time"')).map((l) => JSON.parse(l));
}

// gcc names its temporary files at random (/tmp/ccAbC123.s): the one part
// of make's execs that differs from run to run.
const GCC_TEMP = /\/tmp\/cc[A-Za-z0-9]{6}\./g;

/** An exec as a comparable string: filename and every argument's exact bytes (latin1: one char per byte). */
function key(filename: Buffer, args: Buffer[]): string {
  return JSON.stringify([filename, ...args].map((b) => b.toString('latin1').replace(GCC_TEMP, '/tmp/ccXXXXXX.')));
}

function ourKey(e: ExecRecord): string {
  const args = e.args_base64 ? e.args_base64.map((a) => Buffer.from(a, 'base64')) : e.args.map((a) => Buffer.from(a));
  const filename = e.filename_base64 ? Buffer.from(e.filename_base64, 'base64') : Buffer.from(e.filename);
  return key(filename, args);
}

/**
 * What the default path shows for an exec strace logged: the argv the new
 * image starts with. For a #! script that is the interpreter, its optional
 * argument, the script's path, then the arguments after argv[0] (read here
 * from the script's first line, as the kernel does).
 */
function asNewImage(e: StraceExec, cwd: string): string {
  let head = '';
  try {
    head = readFileSync(resolve(cwd, e.filename.toString('latin1')), 'latin1').split('\n')[0];
  } catch {
    // not readable from here: not a script of ours
  }
  if (!head.startsWith('#!')) return key(e.filename, e.args);
  const [interp, ...rest] = head.slice(2).trim().split(/[ \t]+/);
  const argv = [Buffer.from(interp, 'latin1'), ...(rest.length ? [Buffer.from(rest.join(' '), 'latin1')] : []), e.filename, ...e.args.slice(1)];
  return key(e.filename, argv);
}

const sorted = (xs: string[]) => [...xs].sort();

function project(): string {
  const dir = tempDir('make');
  for (let i = 0; i < 4; i++) writeFileSync(join(dir, `m${i}.c`), `int f${i}(int x) { return x * ${i + 1}; }\n`);
  writeFileSync(join(dir, 'main.c'), 'int f0(int), f1(int), f2(int), f3(int);\nint main(void) { return f0(1) + f1(1) + f2(1) + f3(1) - 10; }\n');
  writeFileSync(join(dir, 'Makefile'), 'OBJS = main.o m0.o m1.o m2.o m3.o\nprog: $(OBJS)\n\tcc -o $@ $(OBJS)\n%.o: %.c\n\tcc -O1 -c -o $@ $<\n');
  return dir;
}

function scripts(): { dir: string; argv: string[] } {
  const dir = tempDir('scripts');
  const sub = join(dir, 'sub.sh');
  writeFileSync(sub, '#!/bin/sh -e\n/bin/true "$@" done\n', { mode: 0o755 });
  // printf's octal escapes make bytes that are not UTF-8 (0xff 0xfe), a lone
  // continuation byte, a control byte, and valid UTF-8 next to them.
  writeFileSync(join(dir, 'main.sh'), `#!/bin/sh
/bin/true "$(printf '\\377\\376')" plain "$(printf 'caf\\303\\251')"
/usr/bin/env /bin/true "$(printf 'a\\001b\\200')" ""
${sub} "$(printf '\\376x')" two
( /bin/true subshell )
`, { mode: 0o755 });
  return { dir, argv: [join(dir, 'main.sh'), 'arg1'] };
}

for (const [name, make] of [
  ['make -j2 of a 5-file C project', () => { const d = project(); return { dir: d, argv: ['make', '-B', '-j2', '-C', d] }; }],
  ['#! scripts with arguments that are not UTF-8', scripts],
] as const) {
  test(`execsnoop = strace's execve log: ${name}`, async () => {
    const { dir, argv } = make();
    const s1 = await straceExecs(argv);
    const s2 = await straceExecs(argv);
    // The same execs every run (the order varies with -j2): no tolerance.
    assert.deepEqual(sorted(s1.map((e) => key(e.filename, e.args))), sorted(s2.map((e) => key(e.filename, e.args))), 'strace: same execs in both runs');
    assert.ok(s1.length >= 5, `strace saw ${s1.length} execs`);

    // -x: the syscall paths show what was passed, exactly.
    const x = await runRbtrace(['execsnoop', '--json', '-x', '--', ...argv]);
    assert.equal(x.code, 0, x.stderr);
    const ok = records(x.stderr).filter((e) => e.ret === 0);
    assert.deepEqual(sorted(ok.map(ourKey)), sorted(s1.map((e) => key(e.filename, e.args))), '-x: the execs as passed');

    // Default path: what the new image starts with (see asNewImage).
    const d = await runRbtrace(['execsnoop', '--json', '--', ...argv]);
    assert.equal(d.code, 0, d.stderr);
    const recs = records(d.stderr);
    assert.deepEqual(sorted(recs.map(ourKey)), sorted(s1.map((e) => asNewImage(e, dir))), 'default path');
    for (const e of recs) {
      const script = readFileSync(e.filename_base64 ? Buffer.from(e.filename_base64, 'base64') : e.filename, 'latin1').startsWith('#!');
      assert.equal(e.interpreter !== undefined, script, `${e.filename}: interpreter field iff a #! script`);
    }
  });
}
