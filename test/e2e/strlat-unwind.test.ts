// strlat --stack --unwind dwarf (issue 28): callers through a program built
// without frame pointers, one we did not write: Debian's gzip (-O2, no frame
// pointers, stripped of .symtab but with .eh_frame), tracing libc's read and
// write. The same workload under --unwind fp, and strace, on the same input.
import type { StrlatReport } from '../../src/tools/strlat/collect.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORT_ON_STDOUT, runRbtrace, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['strlat_entry_multi', 'strlat_return_multi'];
const FUNCS = ['read', 'write'];

function reports(stdout: string): Map<string, StrlatReport> {
  const out = new Map<string, StrlatReport>();
  for (const l of stdout.split('\n')) {
    if (!l.startsWith('{')) continue;
    const r = JSON.parse(l) as StrlatReport;
    out.set(r.function, r);
  }
  return out;
}

/** gzip compressing `file` (-k: the input stays, -f: the .gz is overwritten), traced by strlat. */
async function traced(file: string, unwind: 'fp' | 'dwarf'): Promise<Map<string, StrlatReport>> {
  const r = await runRbtrace(['strlat', ...REPORT_ON_STDOUT, '--json', '--stack', '--unwind', unwind, '--func', `c:${FUNCS.join(',')}`, '--', 'gzip', '-kf', '-1', file], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const reps = reports(r.stdout);
  assert.deepEqual([...reps.keys()].sort(), FUNCS, r.stdout);
  return reps;
}

/**
 * The oracle: gzip's read and write calls as strace sees them. ld.so reads
 * each library's ELF header with its own read (not libc's, so not probed):
 * those are the reads whose data starts with the ELF magic.
 */
function straced(file: string, dir: string): Record<string, number> {
  const log = join(dir, 'strace.txt');
  execFileSync('strace', ['-f', '-qq', '-e', 'trace=read,write', '-o', log, 'gzip', '-kf', '-1', file]);
  const lines = readFileSync(log, 'utf8').split('\n');
  const calls = (name: string) => lines.filter((l) => new RegExp(`^\\d+\\s+${name}\\(`).test(l));
  return {
    read: calls('read').filter((l) => !l.includes('"\\177ELF')).length,
    write: calls('write').length,
  };
}

/** Calls whose stack reached main: the walk says it got to the outermost frame, through __libc_start_call_main into gzip. */
function toMain(rep: StrlatReport): number {
  return (rep.stacks ?? []).filter((s) => {
    const i = s.stack.findIndex((f) => f.name === '__libc_start_call_main');
    return !s.truncated && i > 0 && /gzip$/.test(s.stack[i - 1].module ?? '');
  }).reduce((n, s) => n + s.count, 0);
}

const stackCalls = (rep: StrlatReport) => (rep.stacks ?? []).reduce((n, s) => n + s.count, 0);
const truncatedCalls = (rep: StrlatReport) => (rep.stacks ?? []).filter((s) => s.truncated).reduce((n, s) => n + s.count, 0);

test('gzip (no frame pointers): --unwind dwarf reaches main in >= 95 % of calls, fp is cut short, counts equal fp\'s and strace\'s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-strlat-unwind-'));
  const file = join(dir, 'in.bin');
  // Incompressible, so gzip writes as much as it reads: 8 MiB is ~250 reads and ~30 writes.
  writeFileSync(file, randomBytes(8 << 20));
  const oracle = straced(file, dir);
  const fp = await traced(file, 'fp');
  const dwarf = await traced(file, 'dwarf');
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  for (const f of FUNCS) {
    const d = dwarf.get(f)!;
    const p = fp.get(f)!;
    // Exact: gzip's calls are the same on the same input, and each mode counts every call in BPF
    // (the stack copy is extra; `unmatched` would say a return without its entry).
    assert.equal(d.count, oracle[f], `${f}: dwarf ${d.count}, strace ${oracle[f]}`);
    assert.equal(p.count, oracle[f], `${f}: fp ${p.count}, strace ${oracle[f]}`);
    assert.ok(oracle[f] >= 10, `${f}: only ${oracle[f]} calls`);
    assert.equal(d.unmatched + p.unmatched, 0);
    // gzip calls each from a couple of places: the 10 rows shown hold every call, so no call's
    // stack was lost (a full ring buffer would leave it out of the rows).
    assert.equal(stackCalls(d), d.count, `${f}: ${stackCalls(d)} of ${d.count} calls in the dwarf rows`);
    assert.equal(stackCalls(p), p.count, `${f}: ${stackCalls(p)} of ${p.count} calls in the fp rows`);
    // The bar: >= 95 % of the calls reach main with dwarf.
    assert.ok(toMain(d) >= 0.95 * d.count, `${f}: ${toMain(d)} of ${d.count} dwarf stacks reach main: ${JSON.stringify(d.stacks)}`);
    // And the reason for it: frame pointers lose most of them here (measured: every one, a single gzip frame).
    assert.ok(truncatedCalls(p) > 0.5 * p.count && toMain(p) < 0.5 * p.count, `${f}: fp stacks not cut short: ${JSON.stringify(p.stacks)}`);
    // Both modes see the same callers: the innermost frame is the return address in gzip.
    for (const rep of [d, p]) assert.ok(rep.stacks!.every((s) => /gzip$/.test(s.stack[0].module ?? '')), JSON.stringify(rep.stacks));
  }
});

test('--unwind: bad combinations in one line, exit 2', async () => {
  for (const [args, want] of [
    [['--unwind', 'dwarf', '--func', 'c:write'], /--unwind is for --stack/],
    [['--stack', '--unwind', 'dwarf', '--kfunc', 'vfs_read'], /--kfunc and --unwind dwarf cannot be used together/],
    [['--stack', '--unwind', 'lbr', '--func', 'c:write'], /--unwind.*lbr.*(fp|dwarf)/],
  ] as const) {
    const r = await runRbtrace(['strlat', ...args, '-d', '1']);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length <= 2, true, r.stderr);
  }
});
