// `-- CMD` gets the environment rbtrace got, byte for byte and in order,
// and the argv it was given: whatever is in that environment (no SHLVL, PWD
// or `_`, as sudo, systemd and cron start rbtrace; variables perl or bash
// would obey in the gate; odd bytes; a long value). The oracle is
// coreutils' `env -0` run by Node with the same environment. And the gate
// makes one execve, the command's, even when the kernel refuses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RBTRACE, buildC } from '../helpers.js';

const DIR = mkdtempSync(join(tmpdir(), 'rbtrace-command-env-'));

// Writes its environment as `env -0` does (each string NUL-terminated) to
// argv[1], and its argv the same way to argv[2].
const DUMP = buildC(`
#include <stdio.h>
#include <string.h>
extern char **environ;
static void dump(const char *file, char **v) {
  FILE *out = fopen(file, "w");
  for (; *v; v++) fwrite(*v, 1, strlen(*v) + 1, out);
  fclose(out);
}
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  dump(argv[1], environ);
  dump(argv[2], argv);
  return 0;
}`, 'envdump');

/** The environment `env` makes, as coreutils' env -0 prints it (Node spawns both alike). */
function oracle(env: NodeJS.ProcessEnv): Buffer {
  const r = spawnSync('/usr/bin/env', ['-0'], { env, maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

/**
 * Run DUMP under `rbtrace TOOL` with this environment: what it got, and the
 * report (-o FILE: stderr then holds only what rbtrace and its gate say).
 */
function traced(tool: string, env: NodeJS.ProcessEnv, argv: string[] = [DUMP]): { env: Buffer; argv: Buffer; report: string; stderr: string } {
  const envFile = join(DIR, `${tool}.env`), argvFile = join(DIR, `${tool}.argv`), reportFile = join(DIR, `${tool}.report`);
  const r = spawnSync(process.execPath, [RBTRACE, tool, '--json', '-o', reportFile, '--', argv[0], envFile, argvFile, ...argv.slice(1)], {
    env, encoding: 'utf8', timeout: 60000,
  });
  assert.equal(r.status, 0, `rbtrace ${tool}: ${r.stderr}`);
  return { env: readFileSync(envFile), argv: readFileSync(argvFile), report: readFileSync(reportFile, 'utf8'), stderr: r.stderr };
}

/** NUL-terminated strings, for readable failure messages. */
const strings = (b: Buffer): string[] => b.toString('latin1').split('\0').slice(0, -1);

function assertSameEnv(got: Buffer, want: Buffer, what: string): void {
  // Compare as lists first (a readable diff), then as bytes (order, encoding).
  assert.deepEqual(strings(got), strings(want), `${what}: the command's environment`);
  assert.ok(got.equals(want), `${what}: the command's environment, byte for byte`);
}

test('CMD gets the environment rbtrace got, byte for byte and in order (the test\'s, and one without SHLVL, PWD, _)', () => {
  const mine = { ...process.env };
  assertSameEnv(traced('execsnoop', mine).env, oracle(mine), 'the test\'s environment');

  // As sudo's env_reset, systemd, cron start rbtrace: bash's exec would add
  // SHLVL=0 (and PWD), which is what broke the dash malloc oracle.
  const bare = { ...process.env };
  delete bare.SHLVL;
  delete bare.PWD;
  delete bare._;
  const want = oracle(bare);
  assert.ok(!strings(want).some((s) => /^(SHLVL|PWD|_)=/.test(s)), 'the oracle has none of them');
  assertSameEnv(traced('syscount', bare).env, want, 'no SHLVL, PWD, _');
});

test('CMD gets variables perl and bash would obey, odd bytes and a long value unchanged; the gate obeys none', () => {
  // A module perl would load through PERL5LIB + PERL5OPT: it leaves a mark.
  const evil = join(DIR, 'evil');
  mkdirSync(evil, { recursive: true });
  const mark = join(DIR, 'perl-obeyed');
  writeFileSync(join(evil, 'RbtraceEvil.pm'), `package RbtraceEvil; open my $f, '>', '${mark}'; 1;\n`);
  writeFileSync(join(evil, 'bash-env.sh'), `: > '${mark}'\n`);
  const env: NodeJS.ProcessEnv = {
    // Names in no sorted order, so that a sorted environment shows.
    ZZ_FIRST: 'z',
    PERL5OPT: '-MRbtraceEvil -Mstrict -e die',
    PERL5LIB: evil,
    PERLLIB: evil,
    PERL5DB: 'BEGIN { die }',
    PERLIO: ':bogus_layer',
    PERL_HASH_SEED: '0',
    PERL_UNICODE: 'SDA',
    LC_ALL: 'xx_YY.UTF-8', // not installed: perl would warn at start-up
    LANG: 'xx_YY.UTF-8',
    BASH_ENV: join(evil, 'bash-env.sh'),
    ENV: join(evil, 'bash-env.sh'),
    SHELLOPTS: 'xtrace',
    AA_ESC: '\x1b[31mred\x1b[0m',
    AB_NEWLINE: 'one\ntwo\n',
    AC_TAB_CR: '\t\r',
    AD_EQUALS: 'x=y==z',
    AE_EMPTY: '',
    AF_UTF8: 'é 漢 🙂',
    AG_C1: '\u0085\u009b',
    AH_QUOTES: `'"\\$(touch ${mark})\``,
    AI_LONG: 'x'.repeat(120_000), // near MAX_ARG_STRLEN (128 KiB per string)
    PATH: process.env.PATH,
  };
  const want = oracle(env);
  // The dumper agrees with coreutils run directly (so it is a fair witness).
  const direct = spawnSync(DUMP, [join(DIR, 'direct.env'), join(DIR, 'direct.argv')], { env });
  assert.equal(direct.status, 0);
  assertSameEnv(readFileSync(join(DIR, 'direct.env')), want, 'run directly');
  for (const tool of ['execsnoop', 'syscount']) {
    const t = traced(tool, env);
    assertSameEnv(t.env, want, `hostile and odd variables under ${tool}`);
    assert.equal(existsSync(mark), false, 'no module or script of the environment ran in the gate');
    assert.doesNotMatch(t.stderr, /perl|locale|PerlIO|bash/i, 'the gate said nothing');
    if (tool === 'execsnoop') {
      // Exactly one exec shown: the command's, with its argv.
      const execs = t.report.trim().split('\n').map((l) => JSON.parse(l) as { filename: string; args: string[] });
      assert.deepEqual(execs.map((e) => [e.filename, e.args.length]), [[DUMP, 3]]);
    }
  }
});

test('CMD gets bytes that are not UTF-8 as they are (Node\'s process.env would replace them with U+FFFD)', () => {
  // Node can put no such byte in an environment: perl sets it, then execs.
  const setLatin1 = (argv: string[]) => spawnSync('/usr/bin/perl', ['-e', '$ENV{RBTRACE_T_LATIN1} = "caf\\xe9 \\xff\\xfe\\xc3"; exec { $ARGV[0] } @ARGV or die "$!"', ...argv], { env: process.env, timeout: 60000 });
  const plain = setLatin1(['/usr/bin/env', '-0']);
  assert.equal(plain.status, 0, String(plain.stderr));
  const envFile = join(DIR, 'latin1.env');
  const r = setLatin1([process.execPath, RBTRACE, 'execsnoop', '--', DUMP, envFile, join(DIR, 'latin1.argv')]);
  assert.equal(r.status, 0, String(r.stderr));
  const got = readFileSync(envFile);
  assert.ok(strings(got).includes('RBTRACE_T_LATIN1=caf\xe9 \xff\xfe\xc3'), 'the raw bytes (latin1 here)');
  assertSameEnv(got, plain.stdout, 'bytes that are not UTF-8');
});

test('CMD gets argv as given: argv[0] as written (found on PATH), odd arguments', () => {
  const bin = join(DIR, 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(DUMP, join(bin, 'envdump-by-name'));
  chmodSync(join(bin, 'envdump-by-name'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const extra = ['', ' two words ', 'new\nline', '\x1b[1m', 'é', '--', '-v'];
  const t = traced('syscount', env, ['envdump-by-name', ...extra]);
  const direct = spawnSync('envdump-by-name', [join(DIR, 'plain.env'), join(DIR, 'plain.argv'), ...extra], { env });
  assert.equal(direct.status, 0);
  // All but the two output files' names (latin1: byte for byte).
  const args = (b: Buffer) => strings(b).filter((_, i) => i !== 1 && i !== 2);
  const want = args(readFileSync(join(DIR, 'plain.argv')));
  assert.deepEqual(want, ['envdump-by-name', ...extra.map((a) => Buffer.from(a).toString('latin1'))]);
  assert.deepEqual(args(t.argv), want, 'argv[0] as written, not the resolved path; every argument as given');
});

test('CMD starts with the signal mask and ignored signals it gets without rbtrace (perl ignores SIGFPE)', () => {
  const argv = ['/bin/grep', '-E', '^Sig(Blk|Ign):', '/proc/self/status'];
  const plain = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  assert.equal(plain.status, 0);
  assert.match(plain.stdout, /^SigBlk:\s+0+\nSigIgn:\s+0+\n$/, 'Node starts it with nothing blocked or ignored');
  const r = spawnSync(process.execPath, [RBTRACE, 'execsnoop', '--json', '--', ...argv], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, plain.stdout, 'stdout is grep\'s alone: the records are on stderr');
});

test('an exec the kernel refuses: one execve counted, one line, the status bash\'s exec gives', () => {
  // An ELF for another machine passes rbtrace's format check; execve fails
  // with ENOEXEC. glibc's execvp would then run it through /bin/sh (a second
  // execve, counted as the command's): the gate must not.
  const foreign = join(DIR, 'foreign-elf');
  const elf = readFileSync('/bin/true');
  elf.writeUInt16LE(elf.readUInt16LE(18) === 62 ? 183 : 62, 18); // e_machine: x86-64 <-> AArch64
  writeFileSync(foreign, elf, { mode: 0o755 });
  const script = join(DIR, 'no-interpreter');
  writeFileSync(script, '#!/nonexistent/interpreter\necho ran\n', { mode: 0o755 });
  for (const [file, status, msg] of [
    [foreign, 126, /^rbtrace: cannot run .*foreign-elf: Exec format error$/],
    [script, 127, /^rbtrace: cannot run .*no-interpreter: bad interpreter \(#! line\): No such file or directory$/],
  ] as [string, number, RegExp][]) {
    // -o -: the report on stdout, stderr for the one error line.
    const r = spawnSync(process.execPath, [RBTRACE, 'syscount', '--json', '--all', '-o', '-', '--', file], { encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, status, r.stderr);
    assert.match(r.stderr.trimEnd(), msg);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as { syscalls: { name: string; count: number; errors: number }[] };
    // Nothing of the gate but its exec: the one failed execve, and no other call.
    assert.deepEqual(report.syscalls.map((s) => [s.name, s.count, s.errors]), [['execve', 1, 1]], r.stdout);
  }
});
