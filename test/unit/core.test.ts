// Unit tests of the SDK pieces that need no BPF: option parsing, error lines,
// struct layouts, execsnoop's argument handling, and the man pages' coverage
// of every option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseSeconds, parsePositiveInt, commandAfterDashes } from '../../src/core/options.js';
import { parsePid, libraryMatches, processStartTicks, resolveCommand } from '../../src/core/linux/process.js';
import { RbtraceError, UsageError, errorLine, EXIT_USAGE } from '../../src/core/errors.js';
import { StructLayout, scalarLayout, decodeCString } from '../../src/core/bpf/layout.js';
import { sumValues } from '../../src/core/bpf/maps.js';
import { splitRawArgs } from '../../src/tools/execsnoop/collect.js';
import { formatArgs } from '../../src/tools/execsnoop/views.js';
import { TOOLS } from '../../src/tools/registry.js';
import { buildProgram } from '../../src/cli.js';
import { ROOT } from '../helpers.js';

test('option parsers accept good values and reject bad ones with usage errors', () => {
  assert.equal(parseSeconds('-i')('2.5'), 2.5);
  assert.equal(parseSeconds('-d')('0'), 0);
  for (const bad of ['', 'x', '-1', 'NaN', 'Infinity']) assert.throws(() => parseSeconds('-d')(bad), UsageError, bad);
  assert.equal(parsePositiveInt('--max-args', 128)('64'), 64);
  for (const bad of ['0', '129', '1.5', 'ten']) assert.throws(() => parsePositiveInt('--max-args', 128)(bad), UsageError, bad);
  assert.equal(parsePid('1234'), 1234);
  for (const bad of ['abc', '-5', '0', '12x', '99999999']) assert.throws(() => parsePid(bad), UsageError, bad);
});

test('the command after -- is required to follow --', () => {
  assert.deepEqual(commandAfterDashes([], []), []);
  assert.deepEqual(commandAfterDashes(['ls', '-l'], ['--', 'ls', '-l']), ['ls', '-l']);
  assert.throws(() => commandAfterDashes(['ls'], ['ls']), /unexpected argument 'ls'/);
});

test('error lines: one line, tool prefix, hint in parentheses', () => {
  assert.equal(errorLine('rbtrace x', new RbtraceError('it broke', { hint: 'fix it' })), 'rbtrace x: it broke (fix it)');
  assert.equal(errorLine('rbtrace x', new UsageError('bad flag')), 'rbtrace x: bad flag');
  assert.equal(new UsageError('u').exitCode, EXIT_USAGE);
  assert.match(errorLine('rbtrace', new TypeError('boom')), /^rbtrace: internal error: boom \(rerun with --verbose/);
});

test('struct layouts decode and encode every field kind', () => {
  const inner = new StructLayout<{ a: number }>('inner', 4, [{ name: 'a', offset: 0, size: 4, kind: 'u32' }]);
  const layout = new StructLayout<any>('ev', 48, [
    { name: 'big', offset: 0, size: 8, kind: 'u64' },
    { name: 'neg', offset: 8, size: 4, kind: 's32' },
    { name: 'flag', offset: 12, size: 1, kind: 'bool' },
    { name: 'name', offset: 13, size: 7, kind: 'char[7]' },
    { name: 'arr', offset: 20, size: 8, kind: 'u16[4]' },
    { name: 'nested', offset: 28, size: 4, kind: 'struct inner' },
    { name: 'sneg', offset: 32, size: 8, kind: 's64' },
    { name: 'raw', offset: 40, size: 8, kind: 'bytes[8]' },
  ], { inner });
  const bytes = layout.encode({ big: 2 ** 40 + 7, neg: -5, flag: true, name: 'héllo', arr: [1, 2, 65535], sneg: -3, raw: new Uint8Array([9, 8]) });
  const dv = new DataView(bytes.buffer);
  dv.setUint32(28, 77, true);
  const d = layout.decode(bytes);
  assert.equal(d.big, 2 ** 40 + 7);
  assert.equal(d.neg, -5);
  assert.equal(d.flag, true);
  assert.equal(d.name, 'héllo'.slice(0, 5)); // 'héllo' is 6 bytes: fits in char[7] with its NUL
  assert.deepEqual(d.arr, [1, 2, 65535, 0]);
  assert.deepEqual(d.nested, { a: 77 });
  assert.equal(d.sneg, -3);
  assert.deepEqual([...d.raw], [9, 8, 0, 0, 0, 0, 0, 0]);
  // A record shorter than the struct: absent tail fields, no exception.
  assert.equal(layout.decode(bytes.subarray(0, 16)).name, undefined);
  assert.equal(scalarLayout('u32').decode(new Uint8Array([1, 0, 0, 0])).value, 1);
  assert.equal(decodeCString(new Uint8Array([104, 105, 0, 120])), 'hi');
});

test('per-CPU values fold: sums, max and min fields', () => {
  assert.deepEqual(sumValues([{ count: 1, max_ns: 5, min_ns: 0, hist: [1, 2] }, { count: 2, max_ns: 3, min_ns: 4, hist: [0, 5] }]),
    { count: 3, max_ns: 5, min_ns: 4, hist: [1, 7] });
});

test('execsnoop: raw argv areas split exactly, with the per-argument and count limits', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(splitRawArgs(enc('ls\0-l\0\0x y\0'), 64, false), { args: ['ls', '-l', '', 'x y'], cut: [], more: false });
  assert.deepEqual(splitRawArgs(enc(''), 64, false), { args: [], cut: [], more: false });
  assert.deepEqual(splitRawArgs(enc('a\0b\0c\0'), 2, false), { args: ['a', 'b'], cut: [], more: true });
  const long = 'z'.repeat(300);
  const r = splitRawArgs(enc(`p\0${long}\0${'q'.repeat(256)}\0`), 64, false);
  assert.deepEqual(r.args, ['p', 'z'.repeat(256), 'q'.repeat(256)]);
  assert.deepEqual(r.cut, [1]);
  // An area the kernel side cut short: the last argument is open.
  assert.deepEqual(splitRawArgs(enc('a\0bc'), 64, true), { args: ['a', 'bc'], cut: [1], more: true });
  assert.equal(formatArgs({ args: ['echo', 'a\nb', 'x"y'], args_cut: [2], args_truncated: true }, false), 'echo a\\nb x"y... ...');
  assert.equal(formatArgs({ args: ['echo', 'a b'] }, true), '"echo" "a b"');
});

test('process start time: /proc/PID/stat field 22, whatever the comm holds (spaces, parentheses)', async () => {
  // A shell that renames itself (only a process's own threads may write its comm) after one line on stdin.
  const child = spawn('/bin/sh', ['-c', 'read x; printf "a) 1 2 (b" > /proc/$$/comm; read y'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    await new Promise((r) => child.once('spawn', r));
    const pid = child.pid!;
    // Oracle: with a plain comm the fields split on spaces (awk's $22).
    const plain = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[21]);
    assert.equal(processStartTicks(pid), plain);
    child.stdin!.write('\n');
    for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('a)'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(readFileSync(`/proc/${pid}/stat`, 'utf8'), /\(a\) 1 2 \(b\)/);
    assert.equal(processStartTicks(pid), plain, 'the same process, renamed');
    assert.ok(processStartTicks('self')! <= plain, 'this process started first');
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((r) => child.once('exit', r));
  assert.equal(processStartTicks(child.pid!), undefined, 'gone');
});

test('library names match the files the loader would pick', () => {
  assert.ok(libraryMatches('/lib/x86_64-linux-gnu/libc.so.6', 'c'));
  assert.ok(libraryMatches('/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1', 'ruby'));
  assert.ok(libraryMatches('/usr/lib/libjemalloc.so.2', 'libjemalloc.so.2'));
  assert.ok(!libraryMatches('/lib/x86_64-linux-gnu/libcap.so.2', 'c'));
  assert.equal(resolveCommand('definitely-not-a-command-xyz'), undefined);
  assert.match(resolveCommand('sh') ?? '', /\/sh$/);
});

function manText(tool: string): string {
  const file = tool === 'rbtrace' ? 'rbtrace.8' : `rbtrace-${tool}.8`;
  return readFileSync(join(ROOT, 'man', file), 'utf8').replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '');
}

test('every option of every tool appears in its man page, and every tool has one', async () => {
  const { tools } = await buildProgram(() => true);
  for (const { def, cmd } of tools.values()) {
    const text = manText(def.name);
    const missing = cmd.options
      .filter((o) => !(o as unknown as { hidden: boolean }).hidden)
      .map((o) => o.long!)
      .filter((long) => !text.includes(long));
    assert.deepEqual(missing, [], `man/rbtrace-${def.name}.8 lacks ${missing.join(', ')}`);
  }
  const overview = manText('rbtrace');
  for (const entry of TOOLS) assert.ok(overview.includes(`rbtrace-${entry.name}`), `rbtrace.8 lists ${entry.name}`);
});

test('FFI structs have libbpf 1.1\'s sizes (a wrong layout silently shifts fields)', async () => {
  const { objectOpenOpts, uprobeOpts, usdtOpts } = await import('../../src/core/ffi/libbpf.js');
  assert.equal((objectOpenOpts({}) as { sz: number }).sz, 80);
  assert.equal((uprobeOpts({}) as { sz: number }).sz, 40);
  assert.equal((usdtOpts() as { sz: number }).sz, 16);
});
