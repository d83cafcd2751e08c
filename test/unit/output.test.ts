// Unit tests of the output helpers: golden text against bcc's layouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatLog2Hist, formatLinearHist, log2HistToJson, log2Percentile, log2Slot,
  formatDuration, formatBytes, formatCount, escapeArg, escapeBytes, shellQuote, escapeForTerminal, escapeBytesForTerminal,
  createColor, colorLevel, ndjson, renderTable, ColumnPrinter, LiveChart,
} from '../../src/core/output/index.js';
import { reportSink } from '../../src/core/output/sink.js';

const S = (n: number) => '*'.repeat(n);
const sp = (n: number) => ' '.repeat(n);

test('formatLog2Hist: bcc print_log2_hist layout, byte for byte', () => {
  // Written out by hand from trace_helpers.c's format strings:
  // "%*s%-*s : count    distribution", "%*lld -> %-*lld : %-8d |", 40 stars.
  const expected =
    '     usecs               : count    distribution\n' +
    '         0 -> 1          : 0        |                                        |\n' +
    '         2 -> 3          : 1        |****                                    |\n' +
    '         4 -> 7          : 3        |************                            |\n' +
    '         8 -> 15         : 10       |****************************************|\n' +
    '        16 -> 31         : 0        |                                        |\n' +
    '        32 -> 63         : 5        |********************                    |\n';
  assert.equal(formatLog2Hist([0, 1, 3, 10, 0, 5, 0, 0], 'usecs'), expected);
  // Same from bigint counts (u64 map values).
  assert.equal(formatLog2Hist([0n, 1n, 3n, 10n, 0n, 5n], 'usecs'), expected);
});

test('formatLog2Hist: empty histogram prints nothing', () => {
  assert.equal(formatLog2Hist([], 'usecs'), '');
  assert.equal(formatLog2Hist(new Array(27).fill(0), 'usecs'), '');
});

test('formatLog2Hist: single bucket', () => {
  assert.equal(
    formatLog2Hist([7], 'nsecs'),
    '     nsecs               : count    distribution\n' +
      `         0 -> 1          : 7        |${S(40)}|\n`,
  );
  const out = formatLog2Hist([0, 0, 0, 42], 'bytes').split('\n');
  assert.equal(out.length, 6); // header + slots 0..3 + final ''
  assert.equal(out[4], `         8 -> 15         : 42       |${S(40)}|`);
});

test('formatLog2Hist: huge counts do not overflow', () => {
  const out = formatLog2Hist([2 ** 40, 2 ** 39, 2 ** 38 + 1], 'usecs').split('\n');
  assert.equal(out[1], `         0 -> 1          : 1099511627776 |${S(40)}|`);
  assert.equal(out[2], `         2 -> 3          : 549755813888 |${S(20)}${sp(20)}|`);
  assert.equal(out[3], `         4 -> 7          : 274877906945 |${S(10)}${sp(30)}|`);
  // Beyond 2^53 with bigint: exact digits.
  const big = formatLog2Hist([0n, 2n ** 62n], 'usecs');
  assert.match(big, / : 4611686018427387904 \|\*{40}\|/);
});

test('formatLog2Hist: a slot above 32 switches to the wide layout', () => {
  const b = new Array(34).fill(0);
  b[0] = 1;
  b[33] = 2;
  const lines = formatLog2Hist(b, 'nsecs').split('\n');
  assert.equal(lines[0], `${sp(15)}nsecs${sp(24)} : count    distribution`);
  assert.equal(lines[1], `${sp(19)}0 -> 1${sp(19)} : 1        |${S(10)}${sp(10)}|`);
  assert.equal(lines[34], `          8589934592 -> 17179869183          : 2        |${S(20)}|`);
  assert.equal(lines.length, 36);
  // Slot 63: the last u64 slot, 2^63 .. 2^64-1.
  const c = new Array(64).fill(0);
  c[63] = 1;
  const last = formatLog2Hist(c, 'x').split('\n')[64];
  assert.equal(last, ` 9223372036854775808 -> 18446744073709551615 : 1        |${S(20)}|`);
});

test('formatLinearHist: bcc print_linear_hist layout, zero rows skipped', () => {
  assert.equal(
    formatLinearHist([0, 2, 0, 4, 0], 0, 10, 'msecs'),
    '     msecs         : count     distribution\n' +
      `        10         : 2        |${S(20)}${sp(20)}|\n` +
      `        30         : 4        |${S(40)}|\n`,
  );
  assert.equal(formatLinearHist([0, 0], 0, 1, 'x'), '');
  assert.match(formatLinearHist([1], 100, 5, 'x'), /^ {8}100 {8}: 1 {8}\|/m);
});

test('log2HistToJson: first to last non-zero slot', () => {
  assert.deepEqual(log2HistToJson([0, 0, 3, 0, 1, 0, 0]), [
    { low: 4, high: 7, count: 3 },
    { low: 8, high: 15, count: 0 },
    { low: 16, high: 31, count: 1 },
  ]);
  assert.deepEqual(log2HistToJson([5]), [{ low: 0, high: 1, count: 5 }]);
  assert.deepEqual(log2HistToJson([0, 0]), []);
});

test('log2Percentile: upper bound of the crossing bucket', () => {
  const b = [0, 0, 50, 40, 9, 1]; // 100 events
  assert.equal(log2Percentile(b, 50), 7); // 50th event is in slot 2 (4..7)
  assert.equal(log2Percentile(b, 51), 15);
  assert.equal(log2Percentile(b, 90), 15);
  assert.equal(log2Percentile(b, 99), 31);
  assert.equal(log2Percentile(b, 99.5), 63);
  assert.equal(log2Percentile(b, 100), 63);
  assert.equal(log2Percentile(b, 0), 7);
  assert.ok(Number.isNaN(log2Percentile([0, 0], 50)));
  assert.throws(() => log2Percentile(b, 101), RangeError);
});

test('log2Slot matches bits.bpf.h log2l()', () => {
  const cases: [number | bigint, number][] = [
    [0, 0], [1, 0], [2, 1], [3, 1], [4, 2], [1023, 9], [1024, 10],
    [2 ** 32 - 1, 31], [2 ** 32, 32], [2 ** 40 + 5, 40], [2 ** 53, 53],
    [2n ** 64n - 1n, 63], [(1n << 33n) + 1n, 33],
  ];
  for (const [v, slot] of cases) assert.equal(log2Slot(v), slot, `log2Slot(${v})`);
});

test('formatDuration / formatBytes / formatCount', () => {
  assert.equal(formatDuration(0), '0 ns');
  assert.equal(formatDuration(950), '950 ns');
  assert.equal(formatDuration(1234), '1.23 us');
  assert.equal(formatDuration(45_600_000), '45.6 ms');
  assert.equal(formatDuration(999_999), '1.00 ms');
  assert.equal(formatDuration(2_000_000_000n), '2.00 s');
  assert.equal(formatDuration(3_600e9), '3600 s');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(12 * 1024 * 1024), '12.0 MiB');
  assert.equal(formatBytes(3 * 2 ** 30), '3.00 GiB');
  assert.equal(formatCount(0), '0');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(1234567), '1,234,567');
  assert.equal(formatCount(-1000), '-1,000');
  assert.equal(formatCount(2n ** 64n), '18,446,744,073,709,551,616');
});

test('escapeArg: control characters escaped, UTF-8 kept', () => {
  assert.equal(escapeArg(''), '');
  assert.equal(escapeArg('plain --flag=1'), 'plain --flag=1');
  assert.equal(escapeArg('a\nb'), 'a\\nb');
  assert.equal(escapeArg('\t\r'), '\\t\\r');
  assert.equal(escapeArg('back\\slash'), 'back\\\\slash');
  assert.equal(escapeArg('\x1b[31mred'), '\\x1b[31mred');
  assert.equal(escapeArg('\x00\x7f'), '\\x00\\x7f');
  assert.equal(escapeArg('héllo wörld ✓ 日本 😀'), 'héllo wörld ✓ 日本 😀');
  assert.equal(escapeArg('\u009b'), '\\u009b');
});

test('escapeForTerminal: controls, C1, bidi and invisible format characters escaped', () => {
  assert.equal(escapeForTerminal('\x1b]0;PWN\x07\x1b[31m'), '\\x1b]0;PWN\\x07\\x1b[31m');
  assert.equal(escapeForTerminal('abc\u202Egpj.exe'), 'abc\\u202egpj.exe');
  for (const cp of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200b, 0x200e, 0x200f, 0x2028, 0x2029, 0xfeff, 0x061c, 0x00ad, 0x80, 0x85, 0x9b, 0x9f]) {
    const out = escapeForTerminal(`a${String.fromCodePoint(cp)}b`);
    assert.equal(out, `a\\u${cp.toString(16).padStart(4, '0')}b`, `U+${cp.toString(16)}`);
  }
  assert.equal(escapeForTerminal('\u{E0041}'), '\\u{e0041}'); // a tag character
  assert.equal(escapeForTerminal('\ud800x'), '\\ud800x'); // lone surrogate
  assert.equal(escapeForTerminal('\u00a0é日本😀'), '\u00a0é日本😀');
  assert.equal(escapeArg, escapeForTerminal);
  // No raw control, C1 or bidi code point survives, whatever the input.
  let all = '';
  for (let cp = 0; cp < 0x3000; cp++) if (cp < 0xd800 || cp > 0xdfff) all += String.fromCodePoint(cp);
  assert.doesNotMatch(escapeForTerminal(all), /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u);
  assert.equal(escapeBytesForTerminal(Buffer.from('\x1b\u202e\u009b', 'utf8')), '\\x1b\\u202e\\u009b');
});

test('escapeBytes: invalid UTF-8 kept as \\xNN', () => {
  assert.equal(escapeBytes(Buffer.from('héllo\n', 'utf8')), 'héllo\\n');
  assert.equal(escapeBytes(new Uint8Array([0x61, 0xff, 0x62])), 'a\\xffb');
  assert.equal(escapeBytes(new Uint8Array([0xc3])), '\\xc3'); // truncated sequence
  assert.equal(escapeBytes(new Uint8Array([0xc0, 0xaf])), '\\xc0\\xaf'); // overlong '/'
  assert.equal(escapeBytes(new Uint8Array([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80'); // surrogate
  assert.equal(escapeBytes(Buffer.from('😀')), '😀');
  assert.equal(escapeBytes(new Uint8Array([])), '');
});

test('shellQuote: bcc execsnoop -q quoting', () => {
  assert.equal(shellQuote('ls'), '"ls"');
  assert.equal(shellQuote('a b'), '"a b"');
  assert.equal(shellQuote('say "hi"'), '"say \\"hi\\""');
  assert.equal(shellQuote(''), '""');
});

test('ndjson: bigint, undefined, one line', () => {
  assert.equal(ndjson({ a: 1n, b: 2n ** 64n, c: undefined, d: 'x' }), '{"a":1,"b":"18446744073709551616","d":"x"}\n');
  const line = ndjson({ s: 'line1\nline2\r\u2028', nested: { v: [1n, -5n] } });
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.ok(!line.includes('\r') && !line.includes('\u2028'));
  assert.deepEqual(JSON.parse(line), { s: 'line1\nline2\r\u2028', nested: { v: [1, -5] } });
});

test('color: off on non-TTY, with NO_COLOR, with noColor', () => {
  const env = {};
  assert.equal(createColor({ isTTY: false }, { env }).level, 0);
  assert.equal(createColor({}, { env }).level, 0);
  assert.equal(createColor({ isTTY: true }, { env: { NO_COLOR: '1' } }).level, 0);
  assert.equal(createColor({ isTTY: true }, { env, noColor: true }).level, 0);
  assert.equal(createColor({ isTTY: false }, { env }).red('x'), 'x');
  // An empty NO_COLOR does not disable colour (no-color.org).
  assert.ok(createColor({ isTTY: true }, { env: { NO_COLOR: '' } }).level > 0);
  assert.equal(colorLevel({ isTTY: true, getColorDepth: () => 24 }, { env }), 3);
  assert.equal(colorLevel({ isTTY: true, getColorDepth: () => 1 }, { env }), 0);
});

test('renderTable: borderless, aligned', () => {
  const out = renderTable(['PID', 'COMM', 'COUNT'], [[1, 'bash', 12345], [12345, 'x', 1]]);
  assert.equal(out, '  PID  COMM  COUNT\n    1  bash  12345\n12345  x         1\n');
  const left = renderTable(['A', 'B'], [['x', 1]], { align: ['right', 'left'] });
  assert.equal(left, 'A  B\nx  1\n');
  assert.equal(renderTable(['A'], []), 'A\n');
});

test('ColumnPrinter: execsnoop layout', () => {
  const p = new ColumnPrinter([
    { name: 'PCOMM', width: 16 }, { name: 'PID', width: 7 }, { name: 'PPID', width: 7 },
    { name: 'RET', width: 3, align: 'right' }, { name: 'ARGS', width: 0 },
  ]);
  assert.equal(p.header(), 'PCOMM            PID     PPID    RET ARGS\n');
  assert.equal(p.row(['ls', 1234, 1000, 0, '/bin/ls -l']), 'ls               1234    1000      0 /bin/ls -l\n');
  // Overlong values widen their column rather than being cut, like printf.
  assert.equal(p.row(['a-very-long-command-name', 1, 2, -2, '']), 'a-very-long-command-name 1       2        -2\n');
});

test('LiveChart: keeps N points, renders title/legend, redraws in place', () => {
  const c = new LiveChart({ title: 'syscalls/s', series: [{ name: 'read' }, { name: 'write', color: 'red' }], maxPoints: 5, height: 4, color: false });
  assert.match(c.render(), /^syscalls\/s\n\(no data yet\)\n-- read {3}-- write\n$/);
  for (let i = 0; i < 8; i++) c.push({ read: i, write: 10 - i });
  const frame = c.render();
  const lines = frame.split('\n');
  assert.equal(lines[0], 'syscalls/s');
  assert.equal(lines.at(-2), '-- read   -- write');
  assert.equal(lines.length, 1 + 5 + 1 + 1); // title, height+1 chart rows, legend, ''
  assert.ok(!frame.includes('\x1b'));
  let written = '';
  const stream = { write: (s: string) => { written += s; return true; } };
  c.draw(stream);
  assert.ok(!written.startsWith('\x1b'));
  written = '';
  c.push({ read: 3 }); // missing write repeats its last value
  c.draw(stream);
  assert.ok(written.startsWith('\x1b[7A\r\x1b[0J'));
  const colored = new LiveChart({ title: 't', series: [{ name: 'a', color: 'red' }] });
  colored.push({ a: 1 });
  colored.push({ a: 2 });
  assert.ok(colored.render().includes('\x1b[31m'));
});

test('plural: one is singular, every other count plural, with thousands separators', async () => {
  const { plural } = await import('../../src/core/output/format.js');
  assert.equal(plural(1, 'sample'), '1 sample');
  assert.equal(plural(0, 'sample'), '0 samples');
  assert.equal(plural(2, 'call'), '2 calls');
  assert.equal(plural(1234, 'call'), '1,234 calls');
  assert.equal(plural(1n, 'stack'), '1 stack');
  assert.equal(plural(3, 'process', 'processes'), '3 processes');
  // A profile of one sample says so (it said "1 samples in 1 distinct stacks").
  const { writeTable } = await import('../../src/tools/profile/views.js');
  const lines: string[] = [];
  const id = (s: string) => s;
  writeTable((s = '') => lines.push(s), { bold: id, dim: id }, {
    samples: 1, stackErrors: 0, dropped: 0,
    stacks: [{ comm: 'x', pids: [1], count: 1, truncated: false, frames: [], folded: ['x'] }],
  }, 10);
  assert.ok(lines.includes('1 sample in 1 distinct stack; the top 1, innermost frame first:'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('1 sample (100.0%)')), lines.join('\n'));
});

test('reportSink: -o - is stdout; -- CMD without -o is stderr (the command owns stdout); else stdout', () => {
  assert.equal(reportSink('-', true).stream, process.stdout);
  assert.equal(reportSink('-', false).name, 'stdout');
  assert.deepEqual(reportSink(undefined, true), { stream: process.stderr, name: 'stderr' });
  assert.deepEqual(reportSink(undefined, false), { stream: process.stdout, name: 'stdout' });
});
