// The statistics behind `rbtrace diff` and --baseline: Mann-Whitney U on log2
// buckets plus Cliff's delta, checked against values computed by hand and
// against a plain O(n*m) pair count; the comparison of two runs' figures;
// saved-run validation and the regression rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareHistograms, erfc, MIN_SAMPLES } from '../../src/core/report/stats.js';
import { compareFigures, rowChanged } from '../../src/core/report/compare.js';
import { FigureCollector } from '../../src/core/report/figures.js';
import { makeDocument, readDocument, writeDocument } from '../../src/core/report/document.js';
import { findRegressions } from '../../src/core/report/run.js';
import { UsageError } from '../../src/core/errors.js';
import { STRLAT, SYSCOUNT, SYNQUEUE } from '../../src/tools/common/figures.js';
import { formatLog2Pair } from '../../src/tools/diff.js';

/** Cliff's delta by enumerating every pair of samples: the definition. */
function bruteDelta(a: number[], b: number[]): number {
  const xs = a.flatMap((n, i) => Array(n).fill(i));
  const ys = b.flatMap((n, i) => Array(n).fill(i));
  let s = 0;
  for (const x of xs) for (const y of ys) s += Math.sign(y - x);
  return s / (xs.length * ys.length);
}

test('erfc matches known values', () => {
  assert.ok(Math.abs(erfc(0) - 1) < 1e-7);
  assert.ok(Math.abs(erfc(1) - 0.157299207) < 1e-7);
  assert.ok(Math.abs(erfc(2) - 0.004677735) < 1e-7);
  assert.ok(Math.abs(erfc(-1) - 1.842700793) < 1e-7);
});

test('a shift of 1 ms to 4 ms is a change (slower), both ways round', () => {
  const ms1 = []; ms1[19] = 100; // [0.5, 1) M ns: sleeping ~1 ms lands in slot 19 or 20
  const ms4 = []; ms4[21] = 100;
  const up = compareHistograms(ms1.map((v) => v ?? 0), ms4.map((v) => v ?? 0));
  assert.equal(up.verdict, 'higher');
  assert.equal(up.cliffs_delta, 1);
  assert.ok(up.p_value < 1e-20, String(up.p_value));
  assert.equal(compareHistograms(ms4.map((v) => v ?? 0), ms1.map((v) => v ?? 0)).verdict, 'lower');
});

test('the same distribution, or a negligible shift in many samples, is no change', () => {
  const a = [0, 0, 100, 300, 500, 100];
  assert.equal(compareHistograms(a, a).verdict, 'no-change');
  assert.equal(compareHistograms(a, a).p_value, 1);
  // A million calls per side, 1% of them one bucket up: "significant", and meaningless.
  const big = [0, 0, 250000, 500000, 250000];
  const moved = [0, 0, 240000, 500000, 260000];
  const c = compareHistograms(big, moved);
  assert.ok(c.p_value < 0.001, 'the test alone would call it a change');
  assert.ok(Math.abs(c.cliffs_delta) < 0.147);
  assert.equal(c.verdict, 'no-change');
});

test('too few samples: not judged', () => {
  const c = compareHistograms([0, MIN_SAMPLES - 1], [0, 0, 0, 500]);
  assert.equal(c.verdict, 'too-few-samples');
  assert.equal(c.before_n, MIN_SAMPLES - 1);
  assert.equal(c.after_n, 500);
});

test("Cliff's delta over buckets equals the pairwise definition; p from the hand-computed z", () => {
  const a = [3, 10, 20, 5, 2];
  const b = [0, 4, 15, 15, 6];
  const c = compareHistograms(a, b);
  assert.ok(Math.abs(c.cliffs_delta - bruteDelta(a, b)) < 1e-12);
  // U = n1 n2 (1 + delta) / 2; tie-corrected variance; z by hand:
  const n1 = 40, n2 = 40, n = 80;
  const u = (n1 * n2 * (1 + c.cliffs_delta)) / 2;
  const ties = a.map((x, i) => x + b[i]).reduce((s, t) => s + t ** 3 - t, 0);
  const z = (u - (n1 * n2) / 2) / Math.sqrt(((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1))));
  assert.ok(Math.abs(c.p_value - erfc(Math.abs(z) / Math.SQRT2)) < 1e-12);
});

test('compareFigures: rows matched by key, sorted by the size of the main change, new and gone rows', () => {
  const schema = SYSCOUNT({});
  const run = (rows: { name: string; count: number; errors: number }[]) => {
    const c = new FigureCollector(schema);
    c.add({ syscalls: rows });
    return c.result();
  };
  const a = run([{ name: 'read', count: 100, errors: 0 }, { name: 'openat', count: 10, errors: 2 }, { name: 'close', count: 5, errors: 0 }]);
  const b = run([{ name: 'read', count: 90, errors: 0 }, { name: 'openat', count: 40, errors: 2 }, { name: 'brk', count: 1, errors: 0 }]);
  const rows = compareFigures(schema, a, b);
  assert.deepEqual(rows.map((r) => [r.label, r.presence]), [['openat', 'both'], ['read', 'both'], ['close', 'before-only'], ['brk', 'after-only']]);
  const openat = rows[0].fields.find((f) => f.field === 'count')!;
  assert.deepEqual([openat.before, openat.after, openat.change, openat.change_pct], [10, 40, 30, 300]);
  assert.equal(rows[3].fields.find((f) => f.field === 'count')!.change_pct, null);
  assert.ok(rows.every(rowChanged));
});

test('the collector merges rows by key: synqueue listeners with netns, maxima kept', () => {
  const c = new FigureCollector(SYNQUEUE());
  c.add({ listeners: [{ addr: '127.0.0.1', port: 8080, overflows: 3, drops: 1, syncookies: null, accept_queue_max: 5 }] });
  c.add({ listeners: [{ addr: '127.0.0.1', port: 8080, overflows: 2, drops: 0, syncookies: null, accept_queue_max: 4 }, { addr: '127.0.0.1', port: 8080, netns: 4026531840, overflows: 7 }] });
  const f = c.result();
  const rows = f.listeners as Record<string, unknown>[];
  assert.equal(rows.length, 2);
  const plain = rows.find((r) => r.netns === undefined)!;
  assert.deepEqual([plain.overflows, plain.drops, plain.accept_queue_max, plain.syncookies], [5, 1, 5, undefined]);
  assert.deepEqual(f.total, { overflows: 12, drops: 1, syncookies: 0, synack_retrans: 0, enqueued: 0, accept_queue_max: 5, syn_queue_max: 0 });
});

test('regressions: counts up beyond the allowance; a latency percentile only when the histogram shifted', () => {
  const schema = STRLAT();
  const run = (count: number, hist: number[]) => {
    const c = new FigureCollector(schema);
    c.add({ count, total_ns: 0, hist });
    return c.result();
  };
  const h1 = Array(22).fill(0); h1[20] = 200;
  const h4 = Array(22).fill(0); h4[21] = 200;
  assert.deepEqual(findRegressions(schema, run(200, h1), run(200, h1), 0), []);
  assert.deepEqual(findRegressions(schema, run(200, h1), run(209, h1), 10), []);
  const r = findRegressions(schema, run(200, h1), run(221, h1), 10);
  assert.deepEqual(r, ['regression: count 200 -> 221 (+10.5%; at most +10% allowed)']);
  const lat = findRegressions(schema, run(200, h1), run(200, h4), 50);
  assert.deepEqual(lat.map((l) => l.split(' ')[1]), ['p50', 'p90', 'p99']);
  // 10 samples: p99 doubles, but too few to tell
  const few1 = Array(22).fill(0); few1[20] = 10;
  const few4 = Array(22).fill(0); few4[21] = 10;
  assert.deepEqual(findRegressions(schema, run(10, few1), run(10, few4), 0), []);
});

test('saved runs: written and read back; anything else refused with one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-save-'));
  const schema = STRLAT();
  const c = new FigureCollector(schema);
  c.add({ count: 3, total_ns: 30, hist: [0, 3] });
  const doc = makeDocument({ tool: 'strlat', options: { func: 'work' }, command: ['./x'], pid: null, started: new Date(0).toISOString(), duration_s: 1, exit_status: 0, schema, figures: c.result() });
  const file = join(dir, 'run.json');
  writeDocument(file, doc);
  const back = readDocument(file, 'BEFORE');
  assert.equal(back.format, 'rbtrace-run');
  assert.equal(back.version, 1);
  assert.deepEqual(back.figures.hist, [{ low: 2, high: 3, count: 3 }]);
  assert.equal(back.figures.p99_ns, 3);
  const refused = (content: string | undefined, re: RegExp) => {
    const f = join(dir, `bad-${Math.random()}`);
    if (content !== undefined) writeFileSync(f, content);
    try {
      readDocument(f, 'BEFORE');
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof UsageError);
      assert.ok(!err.message.includes('\n'));
      assert.match(err.message, re);
    }
  };
  refused('{"time": 1, "syscalls": []}\n', /is not an rbtrace saved run \(no "format": "rbtrace-run"\)/);
  refused('not json', /not JSON/);
  refused(JSON.stringify({ ...doc, version: 2 }), /is a version 2 saved run; this rbtrace reads version 1/);
  refused(JSON.stringify({ ...doc, figures: null }), /damaged/);
  refused(undefined, /cannot read .*: no such file/);
});

test('two histograms drawn on one log2 scale', () => {
  const a = Array(21).fill(0); a[19] = 90; a[20] = 10;
  const b = Array(22).fill(0); b[21] = 50;
  const text = formatLog2Pair(a, b, 'ns');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 4); // header + slots 19..21
  assert.match(lines[0], /nsecs\s+:\s+before\s+after\s+\|before \(\*\)\s+\|after \(#\)\s+\|$/);
  assert.match(lines[1], /^\s+524288 -> 1048575\s+:\s+90\s+0\s+\|\*{18}\s{2}\|\s{20}\|$/);
  assert.match(lines[2], /^\s+1048576 -> 2097151\s+:\s+10\s+0\s+\|\*{2}\s{18}\|\s{20}\|$/);
  assert.match(lines[3], /^\s+2097152 -> 4194303\s+:\s+0\s+50\s+\|\s{20}\|#{20}\|$/);
});
