// renderTable draws cli-table3's borderless layout itself, in linear time.
// Oracle: cli-table3 driven exactly as renderTable drove it before (the
// options below), on tables with numbers, escapes, colour, CJK and emoji
// (two columns each), and wrapped columns; the outputs must be identical.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import { Chalk } from 'chalk';
import { renderTable, wrapText, type Align } from '../../src/core/output/table.js';
import { cellText, escapeForTerminal, type Cell } from '../../src/core/output/format.js';

const Table = createRequire(import.meta.url)('cli-table3') as typeof TableType;
const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ',
};

/** The previous renderTable: cli-table3 with widths computed as it did. */
function viaCliTable3(headers: string[], rows: Cell[][], align: Align[], bold?: (s: string) => string, fit?: { width: number; wrap: number[] }): string {
  const cells = rows.map((r) => headers.map((_, c) => cellText(r[c])));
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  let widths: (number | null)[] = [];
  if (fit) {
    const natural = headers.map((h, c) => Math.max(visible(h), ...cells.map((r) => visible(r[c]))) + 2);
    const wrapped = new Set(fit.wrap);
    const fixed = natural.reduce((a, w, c) => (wrapped.has(c) ? a : a + w), 0);
    const want = natural.reduce((a, w, c) => (wrapped.has(c) ? a + w : a), 0);
    const room = fit.width - 1 - fixed;
    // A wrapped column is never narrower than its header (renderTable's rule; with one wrapped column, as here, nothing else gives way).
    widths = want <= room ? natural.map(() => null) : natural.map((w, c) => (wrapped.has(c) ? Math.max(16, visible(headers[c]) + 2, Math.floor((room * w) / want)) : null));
  }
  const t = new Table({
    head: headers.map((h) => (bold ? bold(escapeForTerminal(h)) : escapeForTerminal(h))), chars: BORDERLESS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 1, compact: true }, colAligns: align,
  });
  for (const r of cells) t.push(r.map((cell, c) => (widths[c] ? wrapText(cell, widths[c]! - 2).join('\n') : cell)));
  return t.toString().split('\n').map((l) => l.replace(/\s+$/, '')).join('\n') + '\n';
}

// A fixed-seed generator: the same tables on every run.
let seed = 42;
const rnd = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const WORDS = ['bash', 'x', '漢字', '😀ok', 'a\u001b[31mred', '/usr/lib/x86_64-linux-gnu/libc.so.6', 'two words here', '', 'e\u0301', 'ＦＵＬＬ'];

test('renderTable: the layout cli-table3 drew, cell for cell, on 300 random tables', () => {
  const bold = new Chalk({ level: 1 }).bold;
  for (let t = 0; t < 300; t++) {
    const ncol = 1 + rnd(5);
    const headers = Array.from({ length: ncol }, (_, c) => ['PID', 'COMM', 'COUNT', '名前', 'PATH'][c]);
    const rows: Cell[][] = Array.from({ length: rnd(8) }, () => headers.map(() => (rnd(3) === 0 ? rnd(100000) : WORDS[rnd(WORDS.length)] + (rnd(2) ? ` ${WORDS[rnd(WORDS.length)]}` : ''))));
    const align: Align[] = headers.map(() => (rnd(2) ? 'left' : 'right'));
    const fit = rnd(3) === 0 ? { width: 20 + rnd(60), wrap: [ncol - 1] } : undefined;
    const b = rnd(2) ? bold : undefined;
    const want = viaCliTable3(headers, rows, align, b, fit);
    const got = renderTable(headers, rows, { align, color: b ? new Chalk({ level: 1 }) : undefined, fit });
    assert.equal(got, want, `table ${t}: ${JSON.stringify({ headers, rows, align, fit })}`);
  }
});

test('renderTable: 300,000 rows in linear time, no stack overflow', () => {
  const rows = (n: number) => Array.from({ length: n }, (_, i) => [`comm${i}`, i, 'ok']);
  const time = (n: number) => {
    const r = rows(n);
    const t0 = process.hrtime.bigint();
    const out = renderTable(['COMM', 'N', 'RESULT'], r);
    assert.equal(out.split('\n').length, n + 2);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  time(20000); // warm up the JIT
  const small = time(30000);
  const big = time(300000);
  // 10x the rows: linear is ~10x; quadratic (cli-table3) would be ~100x.
  // 30x leaves room for GC pauses on a loaded 2-core machine.
  assert.ok(big < small * 30, `30,000 rows ${small.toFixed(0)} ms, 300,000 rows ${big.toFixed(0)} ms`);
});
