// The command line as a user meets it: operands that are not after `--`,
// out-of-range numbers, options a tool cannot honour, global options before
// the tool's name, and usage errors in one escaped line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace } from '../helpers.js';

/** A usage error: exit 2, exactly one line on stderr, matching `message`. */
async function usageError(args: string[], message: RegExp): Promise<void> {
  const f = await runRbtrace(args, { timeoutMs: 20000 });
  assert.equal(f.code, 2, `${JSON.stringify(args)}: exit ${f.code}\n${f.stderr}`);
  assert.equal(f.stderr.split('\n').length, 2, `${JSON.stringify(args)}: one line\n${f.stderr}`);
  assert.match(f.stderr, message, JSON.stringify(args));
  assert.equal(f.stdout, '');
}

test('operands before -- are refused, and nothing is run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-cli-'));
  const mark = join(dir, 'ran');
  await usageError(['execsnoop', '-d', '1', '/usr/bin/touch', mark, '--'], /^rbtrace execsnoop: unexpected argument '\/usr\/bin\/touch' before -- \(/);
  await usageError(['syscount', '/usr/bin/touch', '--', mark], /^rbtrace syscount: unexpected argument '\/usr\/bin\/touch' before --/);
  await usageError(['mallocstat', 'ls'], /^rbtrace mallocstat: unexpected argument 'ls' \(to trace a command, put it after --: -- ls\)$/m);
  await usageError(['syscount', '--'], /^rbtrace syscount: -- wants a command after it/);
  await usageError(['syscount', '-d', '1', '--'], /^rbtrace syscount: -- wants a command after it/);
  assert.ok(!existsSync(mark), 'the command before -- did not run');
});

test('numbers out of range are usage errors naming the range', async () => {
  const cases: [string[], RegExp][] = [
    [['syscount', '-i', '0'], /-i wants a number of seconds from 0.1 to 2147483, got '0'/],
    [['syscount', '-i', '1e9'], /-i wants a number of seconds from 0.1 to 2147483, got '1e9'/],
    [['execsnoop', '-d', '2200000'], /-d wants a number of seconds from 0 to 2147483, got '2200000'/],
    [['gcstat', '-i', '2147484'], /-i wants a number of seconds/],
    [['execsnoop', '-u', '4294967296'], /-u wants a user name or a uid from 0 to 4294967294, got '4294967296'/],
    [['syscount', '--tid', '0'], /--tid wants a thread id from 1 to 4194304, got '0'/],
    [['syscount', '-e', '-2'], /-e wants an errno name or a number from 1 to 4095, got '-2'/],
    [['syscount', '-T', '0'], /-T wants a whole number from 1 to /],
    [['syscount', '-p', '0'], /-p wants a process id from 1 to 4194304, got '0'/],
    [['execsnoop', '--max-args', '129'], /--max-args wants a whole number from 1 to 128/],
    [['strlat', '--arg', '6', '--size'], /--arg wants an argument position from 1 to 5/],
    [['synqueue', '--port', '65536'], /--port/],
  ];
  for (const [args, message] of cases) await usageError(args, message);
});

test('an option a tool cannot honour is refused', async () => {
  await usageError(['execsnoop', '-i', '1'], /^rbtrace execsnoop: -i does not apply to execsnoop: it prints each exec as it happens \(drop -i\)$/m);
  await usageError(['doctor', '-d', '1'], /^rbtrace doctor: unknown option '-d'/);
  // Options that only shape the text are refused with --json, wherever --json is given.
  await usageError(['execsnoop', '--json', '-T'], /^rbtrace execsnoop: --time shapes the text output only: it does not apply with --json \(drop --time or --json\)$/m);
  await usageError(['--json', 'strlat', '-u'], /^rbtrace strlat: --microseconds shapes the text output only/);
  await usageError(['gcstat', '--no-chart', '--json'], /^rbtrace gcstat: --chart\/--no-chart shapes the text output only/);
  await usageError(['doctor', '--', 'ls'], /^rbtrace doctor: too many arguments/);
});

test('usage errors are one line: suggestions joined, values escaped', async () => {
  await usageError(['execsnoop', '--jsn'], /^rbtrace execsnoop: unknown option '--jsn'; did you mean --json\? \(see rbtrace execsnoop --help\)$/m);
  await usageError(['execsnop'], /^rbtrace: unknown command 'execsnop'; did you mean execsnoop\?/);
  await usageError(['syscount', '-p', '1\n2'], /^rbtrace syscount: -p wants a process id from 1 to 4194304, got '1\\n2' \(e\.g\. -p 1234\)$/m);
  await usageError(['syscount', '-e', '\x1b]0;PWN\x07'], /got '\\x1b\]0;PWN\\x07'/);
  await usageError(['--json'], /^rbtrace: which tool\? \(rbtrace --help lists them\)$/m);
  await usageError(['-v', '--', 'ls'], /^rbtrace: which tool\?/);
});

test('an unknown short or misspelled option: "did you mean", one line, exit 2', async () => {
  // By initial: the long options that begin with the letter.
  await usageError(['strlat', '-s'], /^rbtrace strlat: unknown option '-s'; did you mean one of --save, --size, --stack\? \(see rbtrace strlat --help\)$/m);
  // A case slip: execsnoop has -x (--fails).
  await usageError(['execsnoop', '-X'], /^rbtrace execsnoop: unknown option '-X'; did you mean --fails\?/m);
  await usageError(['mallocstat', '-t', '5'], /^rbtrace mallocstat: unknown option '-t'; did you mean --top\?/m);
  await usageError(['profile', '--foldd'], /^rbtrace profile: unknown option '--foldd'; did you mean --folded\?/m);
  // Nothing near: the bare error, still one line and exit 2.
  await usageError(['syscount', '-Q'], /^rbtrace syscount: unknown option '-Q' \(see rbtrace syscount --help\)$/m);
  await usageError(['mallocstat', '-T', '3'], /^rbtrace mallocstat: -T needs --leaks \(add --leaks\)$/m);
  await usageError(['strlat', '--lib', 'c', '--func', 'c:malloc'], /^rbtrace strlat: --func c:malloc names a library and --lib gives one too/m);
});

test('global options before the tool name: --no-color, --json, -v', async () => {
  const plain = await runRbtrace(['--no-color', 'execsnoop', '-d', '0']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^PCOMM/);
  const json = await runRbtrace(['--json', '-v', 'syscount', '--', '/bin/true']);
  assert.equal(json.code, 0, json.stderr);
  // -- CMD: the record on stderr (the command owns stdout), among -v's lines.
  assert.equal(json.stdout, '');
  assert.ok(JSON.parse(json.stderr.split('\n').find((l) => l.startsWith('{'))!).syscalls, json.stderr);
  assert.match(json.stderr, /rbtrace syscount: probes attached, tracing/, '-v before the tool counts');
  // Given on both sides, or after the tool, as before.
  const both = await runRbtrace(['--json', 'syscount', '--json', '--', '/bin/true']);
  assert.equal(both.code, 0, both.stderr);
  assert.ok(JSON.parse(both.stderr.trim().split('\n')[0]).syscalls);
});
