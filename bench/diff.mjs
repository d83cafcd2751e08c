#!/usr/bin/env node
// bench/diff: wall time and peak RSS of `rbtrace diff` on two saved runs of
// N rows each (execsnoop's shape, rows by command: what a local user can
// inflate by exec'ing binaries of many names; every row changed), at 5,000,
// 20,000, 60,000 and 300,000 rows: this build by default (the first 100
// rows), with --all (every row) and --json, and a baseline build's default
// (which drew every changed row) in the same run, as ratios.
//
//   node bench/diff.mjs [--baseline OTHER/bin/rbtrace] [--rows 5000,20000] [--timeout 600]
//
// A baseline run past --timeout seconds is killed and printed as "> T s".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { baseline: { type: 'string' }, rows: { type: 'string', default: '5000,20000,60000,300000' }, timeout: { type: 'string', default: '600' } } });
const rbtrace = fileURLToPath(new URL('../bin/rbtrace', import.meta.url));
const timeout = Number(values.timeout);
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bench-diff-'));

function savedRun(file, n, shift) {
  const rows = [];
  for (let i = 0; i < n; i++) rows.push({ comm: `cmd${i}`, result: 'ok', count: 1 + ((i + shift) % 7) });
  writeFileSync(file, JSON.stringify({
    format: 'rbtrace-run', version: 1, rbtrace_version: '0.1.0', kernel: 'bench', tool: 'execsnoop', options: {}, command: null, pid: null,
    started: '2026-12-06T20:00:00.000Z', duration_s: 1, exit_status: 0,
    schema: { rows: { array: 'execs', key: ['comm', 'result'], noun: 'command:result', counts: ['count'] } }, figures: { execs: rows },
  }));
}

function measure(bin, args) {
  // GNU time: %e wall seconds, %M peak RSS in KiB.
  const r = spawnSync('/usr/bin/time', ['-f', 'RBT %e %M', process.execPath, bin, 'diff', ...args], {
    encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: timeout * 1000, maxBuffer: 1 << 30,
  });
  if (r.error?.code === 'ETIMEDOUT' || r.signal) return { wall: Infinity, rssMiB: NaN, note: `> ${timeout} s` };
  const m = r.stderr.match(/RBT ([\d.]+) (\d+)/);
  const err = r.stderr.replace(/RBT .*\n?/, '').trim().split('\n')[0];
  if (r.status !== 0) return { wall: m ? Number(m[1]) : NaN, rssMiB: m ? Number(m[2]) / 1024 : NaN, note: `exit ${r.status}: ${err}` };
  return { wall: Number(m[1]), rssMiB: Number(m[2]) / 1024 };
}

const fmt = (x) => (x.note && !Number.isFinite(x.wall) ? x.note : `${x.wall.toFixed(2)} s ${x.rssMiB.toFixed(0)} MiB${x.note ? ` (${x.note})` : ''}`);
try {
  console.log(`rows      default          --all            --json           ${values.baseline ? 'baseline default   baseline/--all' : ''}`);
  for (const n of values.rows.split(',').map(Number)) {
    const a = join(dir, `a${n}.json`);
    const b = join(dir, `b${n}.json`);
    savedRun(a, n, 0);
    savedRun(b, n, 3);
    const def = measure(rbtrace, [a, b]);
    const all = measure(rbtrace, ['--all', a, b]);
    const json = measure(rbtrace, ['--json', a, b]);
    let line = `${String(n).padEnd(9)} ${fmt(def).padEnd(16)} ${fmt(all).padEnd(16)} ${fmt(json).padEnd(16)}`;
    if (values.baseline) {
      const base = measure(values.baseline, [a, b]);
      const ratio = Number.isFinite(base.wall) && !base.note ? `${(base.wall / all.wall).toFixed(1)}x` : base.note ? 'failed' : '-';
      line += ` ${fmt(base).padEnd(18)} ${ratio}`;
    }
    console.log(line);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
