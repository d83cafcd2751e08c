// The value parsers of src/core/parsers.ts and the option plumbing of
// src/core/options.ts: ranges, accepted forms, and the messages' wording.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import {
  secondsParser, integerParser, pidParser, uidParser, errnoParser, portParser, portListParser,
  MAX_TIMER_SECONDS, PID_MAX_LIMIT, MAX_UID, MAX_ERRNO,
} from '../../src/core/parsers.js';
import { addCommonOptions, addGlobalOptions, argsAfterDashes, commandAfterDashes, MIN_INTERVAL_SECONDS } from '../../src/core/options.js';
import { UsageError, EXIT_USAGE } from '../../src/core/errors.js';
import { commanderErrorLine } from '../../src/cli.js';

function refuses(parse: (t: string) => unknown, bad: string[], message?: RegExp): void {
  for (const b of bad) {
    assert.throws(() => parse(b), (e: unknown) => e instanceof UsageError && e.exitCode === EXIT_USAGE && (!message || message.test(e.message)), JSON.stringify(b));
  }
}

test('seconds: decimals within the range; no sign, exponent, hex or infinity', () => {
  const i = secondsParser('-i', { min: 0.1 });
  assert.equal(i('0.1'), 0.1);
  assert.equal(i('2.5'), 2.5);
  assert.equal(i(' 5 '), 5);
  assert.equal(i('.5'), 0.5);
  assert.equal(i('3.'), 3);
  assert.equal(i(String(MAX_TIMER_SECONDS)), MAX_TIMER_SECONDS);
  refuses(i, ['0', '0.09', '-1', '1e9', '1e3', '0x10', 'Infinity', 'NaN', '', ' ', '.', '1.2.3', '2147484', '2147483.5', 'abc'],
    /^-i wants a number of seconds from 0.1 to 2147483, got '/);
  // setTimeout's limit: one more second would overflow to a 1 ms timer.
  assert.ok(MAX_TIMER_SECONDS * 1000 <= 2 ** 31 - 1 && (MAX_TIMER_SECONDS + 1) * 1000 > 2 ** 31 - 1);
  const d = secondsParser('-d', { min: 0 });
  assert.equal(d('0'), 0);
  refuses(d, ['-0.1', '2200000']);
});

test('integers: whole numbers within the range, compared exactly however long', () => {
  const p = integerParser('--max-args', { min: 1, max: 128 });
  assert.equal(p('1'), 1);
  assert.equal(p('128'), 128);
  assert.equal(p('007'), 7);
  refuses(p, ['0', '129', '1.5', '-1', '+1', '1e2', 'ten', '', '99999999999999999999999'], /^--max-args wants a whole number from 1 to 128, got '/);
  const big = integerParser('-x', { min: 0, max: 2 ** 53 - 1 });
  refuses(big, ['9007199254740992', '9007199254740993']);
  assert.equal(big('9007199254740991'), 2 ** 53 - 1);
});

test('pids and tids: 1 to PID_MAX_LIMIT', () => {
  assert.equal(pidParser()('1'), 1);
  assert.equal(pidParser()(String(PID_MAX_LIMIT)), PID_MAX_LIMIT);
  refuses(pidParser(), ['0', String(PID_MAX_LIMIT + 1), '-5', '12x', 'self'], /^-p wants a process id from 1 to 4194304/);
  refuses(pidParser('--tid', 'a thread id'), ['0'], /^--tid wants a thread id from 1 to 4194304, got '0'$/);
});

test('uids: 0 to 4294967294 or a user name; (uid_t)-1 and wrapping values refused', () => {
  const u = uidParser('-u');
  assert.equal(u('0'), 0);
  assert.equal(u(String(MAX_UID)), MAX_UID);
  assert.equal(u('root'), 0);
  refuses(u, ['4294967295', '4294967296', '-1', '1.0'], /^-u wants a user name or a uid from 0 to 4294967294/);
  refuses(u, ['-rf', 'a b', 'x\ny', ''], /^-u wants a user name or a uid/);
  refuses(u, ['no-such-user-rbtrace'], /^-u: no such user 'no-such-user-rbtrace'$/);
});

test('errnos: a name or 1 to 4095', () => {
  const e = errnoParser('-e');
  assert.equal(e('ENOENT'), 2);
  assert.equal(e('enoent'), 2);
  assert.equal(e('EWOULDBLOCK'), 11);
  assert.equal(e('13'), 13);
  assert.equal(e(String(MAX_ERRNO)), MAX_ERRNO);
  refuses(e, ['0', '-2', '4096', '99999999999999999999', 'EFOO', '', '2x', '-ENOENT'], /^-e wants an errno name or a number from 1 to 4095, got '/);
});

test('ports: 1 to 65535, one or a comma-separated list', () => {
  assert.equal(portParser()('80'), 80);
  refuses(portParser(), ['0', '65536', 'http'], /^--port wants a port from 1 to 65535/);
  assert.deepEqual(portListParser()('80, 443'), [80, 443]);
  refuses(portListParser(), ['80,', '0', '80,65536', '', 'x'], /^--port wants port numbers from 1 to 65535/);
});

test('a common option a tool does not honour is refused, and hidden from its help', () => {
  const cmd = new Command('demo').exitOverride();
  addGlobalOptions(cmd);
  addCommonOptions(cmd, ['pid', 'command', 'duration'], { interval: 'it prints each event as it happens' });
  assert.ok(!cmd.helpInformation().includes('--interval'));
  assert.ok(cmd.helpInformation().includes('--duration'));
  assert.throws(() => cmd.parse(['-i', '1'], { from: 'user' }), /^UsageError: -i does not apply to demo: it prints each event as it happens$/);
  const all = new Command('all').exitOverride();
  addCommonOptions(all);
  all.parse(['-i', '0.5', '-d', '0'], { from: 'user' });
  assert.deepEqual([all.opts().interval, all.opts().duration], [0.5, 0]);
  assert.throws(() => all.parse(['-i', String(MIN_INTERVAL_SECONDS / 2)], { from: 'user' }), /^UsageError: -i wants a number of seconds from 0.1 to/);
});

test('the command is what follows the literal --, as commander splits it', () => {
  const cmd = new Command('t');
  addGlobalOptions(cmd);
  addCommonOptions(cmd);
  cmd.option('-n, --name <regex>').option('-x');
  const o = cmd.options;
  assert.deepEqual(argsAfterDashes(['-d', '1', '--', 'ls', '--', 'x'], o), ['ls', '--', 'x']);
  assert.equal(argsAfterDashes(['-n', '--', 'ls'], o), undefined, "-n's value is --");
  assert.deepEqual(argsAfterDashes(['-n', '--', '--', 'ls'], o), ['ls']);
  assert.deepEqual(argsAfterDashes(['-xd', '--', '--', 'ls'], o), ['ls'], '-xd: -d takes the next argument');
  assert.deepEqual(argsAfterDashes(['-d1', '--', 'ls'], o), ['ls'], '-d1: the value is in the group');
  assert.deepEqual(argsAfterDashes(['--name=--', '--', 'ls'], o), ['ls']);

  assert.deepEqual(commandAfterDashes(['ls', '-l'], ['--', 'ls', '-l'], o), ['ls', '-l']);
  assert.deepEqual(commandAfterDashes([], ['-d', '1'], o), []);
  assert.throws(() => commandAfterDashes(['/bin/echo', 'INJECTED'], ['-d', '1', '/bin/echo', 'INJECTED', '--'], o), /unexpected argument '\/bin\/echo' before --/);
  assert.throws(() => commandAfterDashes(['echo', 'hi'], ['echo', '--', 'hi'], o), /unexpected argument 'echo' before --/);
  assert.throws(() => commandAfterDashes(['ls'], ['ls'], o), /unexpected argument 'ls'$/);
  assert.throws(() => commandAfterDashes([], ['--'], o), /^UsageError: -- wants a command after it$/);
  assert.throws(() => commandAfterDashes(['foo'], ['-n', '--', 'foo'], o), /unexpected argument 'foo'/);
});

test("commander's errors become one escaped line", () => {
  assert.equal(commanderErrorLine('rbtrace execsnoop', "error: unknown option '--jsn'\n(Did you mean --json?)\n"),
    "rbtrace execsnoop: unknown option '--jsn'; did you mean --json? (see rbtrace execsnoop --help)");
  assert.equal(commanderErrorLine('rbtrace', "error: unknown command 'a\nb\x1b[31m'\n"),
    "rbtrace: unknown command 'a\\nb\\x1b[31m' (see rbtrace --help)");
});
