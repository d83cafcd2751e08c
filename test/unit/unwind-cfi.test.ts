// src/core/unwind/cfi.ts against an independent reader of the same tables:
// binutils' `readelf --debug-dump=frames-interp`, which prints every row of
// every FDE (CFA rule, and where each register was saved). Every row of
// libc's and libruby's .eh_frame must read the same, x86-64's and (where
// the arm64 VM's root is unpacked, test/vm/arm64-root.sh) aarch64's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { arm64Root } from '../helpers.js';
import { CfiTable, type CfiRow } from '../../src/core/unwind/cfi.js';
import { openFile } from '../../src/core/linux/procfiles.js';

const X86_REGS = ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'ra'];
// readelf names aarch64's x30, the return address column, "ra"; v0-v31 are 64-95.
const A64_REGS = [...Array.from({ length: 30 }, (_, i) => `x${i}`), 'ra', 'sp', ...Array.from({ length: 32 }, (_, i) => `r${32 + i}`), ...Array.from({ length: 32 }, (_, i) => `v${i}`)];

/** readelf's notation for one row: "rsp+8" / "exp" for the CFA, "c-16" / "u" / "s" (same value) / "exp" / "rN" (saved in register N) per register. */
function ours(row: CfiRow, columns: string[], REGS: string[]): string[] {
  const cfa = row.cfa.kind === 'reg' ? `${REGS[row.cfa.reg] ?? `r${row.cfa.reg}`}+${row.cfa.offset}` : 'exp';
  return [cfa, ...columns.map((c) => {
    const rule = row.regs.get(REGS.indexOf(c));
    if (!rule) return 'u';
    if (rule.kind === 'same') return 's';
    if (rule.kind === 'undefined') return 'u';
    if (rule.kind === 'offset') return `c${rule.offset >= 0 ? '+' : ''}${rule.offset}`;
    if (rule.kind === 'val_offset') return `v${rule.offset >= 0 ? '+' : ''}${rule.offset}`;
    if (rule.kind === 'register') return `r${rule.reg}`;
    return rule.kind === 'expression' ? 'exp' : 'vexp';
  })];
}

function check(path: string, regs: string[]): number {
  const table = CfiTable.of(openFile(path));
  assert.ok(table, `${path} has .eh_frame`);
  // readelf exits 1 on libc for a warning about another section; its frame rows are all printed.
  const text = spawnSync('readelf', ['--debug-dump=frames-interp', path], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout;
  let columns: string[] = [];
  let inFde = false;
  let rows = 0;
  const bad: string[] = [];
  for (const line of text.split('\n')) {
    if (/ FDE /.test(line)) { inFde = true; columns = []; continue; }
    if (/ CIE /.test(line)) { inFde = false; continue; }
    if (!inFde) continue;
    const head = /^\s+LOC\s+CFA\s+(.*)$/.exec(line);
    if (head) { columns = head[1].trim().split(/\s+/); continue; }
    const m = /^([0-9a-f]{16}) (.*)$/.exec(line);
    if (!m) continue;
    // A register rule reads "r3 (rbx)" (its name added when it has one).
    const theirs = m[2].replace(/ \([a-z0-9]+\)/g, '').trim().split(/\s+/);
    const row = table!.row(parseInt(m[1], 16));
    rows++;
    if (!row) { bad.push(`${m[1]}: no row`); continue; }
    // readelf leaves a column blank until the register has a rule: pad with "u".
    const want = [theirs[0], ...columns.map((_, i) => theirs[i + 1] ?? 'u')];
    const got = ours(row, columns, regs);
    if (want.join(' ') !== got.join(' ')) bad.push(`${m[1]}: readelf ${want.join(' ')}, ours ${got.join(' ')} (${columns.join(' ')})`);
  }
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${rows} rows differ in ${path}`);
  return rows;
}

for (const lib of ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2']) {
  test(`every CFI row of ${lib} reads as readelf reads it`, { skip: !existsSync(lib) && process.env.CI !== 'true' ? `${lib} absent` : false }, () => {
    const rows = check(lib, X86_REGS);
    assert.ok(rows > 1000, `only ${rows} rows`);
  });
}

const A64_ROOT = arm64Root();
for (const name of ['libc.so.6', 'libruby-3.1.so.3.1.2']) {
  const lib = `${A64_ROOT}/usr/lib/aarch64-linux-gnu/${name}`;
  test(`every CFI row of the arm64 ${name} reads as readelf reads it`, { skip: A64_ROOT ? false : 'no arm64 root (test/vm/arm64-root.sh)' }, () => {
    const rows = check(lib, A64_REGS);
    assert.ok(rows > 1000, `only ${rows} rows`);
  });
}
