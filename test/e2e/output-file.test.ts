// Files the user names for rbtrace to write (--save FILE, profile --svg
// FILE), run as root: rbtrace replaces only a file that already holds what
// the option writes (or an empty one), never a binary, a link or a device,
// neither when the option is parsed nor when the name changes during the
// run. A fuzzed `--save /bin/true` once replaced /bin/true on a CI machine;
// these tests aim at copies, never at the system's files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, lstatSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace, settledLeftovers, sleep, startRbtrace } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-output-'));
const file = (name: string) => join(dir, name);
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
/** A short system-wide syscount: enough to have figures to save. */
const SYSCOUNT = ['syscount', '-d', '0.3'];

test('--save refuses a file that is not a saved run (a binary, a link, a directory, /dev/null), before tracing; the file is unchanged', async () => {
  const elf = file('true-copy');
  copyFileSync('/bin/true', elf);
  const before = sha(elf);
  const victim = file('victim.txt');
  writeFileSync(victim, 'not a run\n');
  symlinkSync(victim, file('link.json'));
  const cases: [string, RegExp][] = [
    [elf, /will not replace .*true-copy: it exists and is not an rbtrace saved run \(remove it first, or give another name\)$/],
    [victim, /will not replace .*victim\.txt: it exists and is not an rbtrace saved run/],
    [file('link.json'), /will not replace .*link\.json: it is a symbolic link/],
    [dir, /will not replace .*: it is a directory/],
    ['/dev/null', /will not replace \/dev\/null: it is not a regular file/],
  ];
  for (const [target, re] of cases) {
    const started = Date.now();
    const r = await runRbtrace([SYSCOUNT[0], '--save', target, ...SYSCOUNT.slice(1)]);
    assert.equal(r.code, 2, `${target}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^rbtrace syscount: --save: ${re.source}`));
    assert.ok(Date.now() - started < 5000, 'refused at once, not after the run');
  }
  assert.equal(sha(elf), before, 'the binary is unchanged');
  assert.equal(readFileSync(victim, 'utf8'), 'not a run\n', 'the link\'s target is unchanged');
  assert.ok(lstatSync(file('link.json')).isSymbolicLink());
  assert.deepEqual(await settledLeftovers(['tb_enter', 'tb_exit', 'rt_enter', 'rt_exit']), []);
});

test('--save replaces a saved run and an empty file, and leaves no temporary file', async () => {
  const run = file('run.json');
  const first = await runRbtrace([SYSCOUNT[0], '--save', run, ...SYSCOUNT.slice(1)]);
  assert.equal(first.code, 0, first.stderr);
  const started1 = JSON.parse(readFileSync(run, 'utf8')).started;
  await sleep(10);
  const again = await runRbtrace([SYSCOUNT[0], '--save', run, ...SYSCOUNT.slice(1)]);
  assert.equal(again.code, 0, again.stderr);
  const doc = JSON.parse(readFileSync(run, 'utf8'));
  assert.equal(doc.format, 'rbtrace-run');
  assert.notEqual(doc.started, started1, 'the second run replaced the first');
  const empty = file('empty.json');
  writeFileSync(empty, '');
  const e = await runRbtrace([SYSCOUNT[0], '--save', empty, ...SYSCOUNT.slice(1)]);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(JSON.parse(readFileSync(empty, 'utf8')).tool, 'syscount');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('rbtrace-tmp')), [], 'no temporary file left');
});

test('--save: a name that becomes something else during the run is not replaced at the end (exit 1, one line)', async () => {
  const target = file('late.json');
  const r = startRbtrace([SYSCOUNT[0], '-v', '--save', target, '-d', '1.5']);
  // Once attached, the start's check of the name is over (a slow start under
  // load must not see the file yet): the replacement happens during the run.
  await r.ready();
  writeFileSync(target, 'written by someone else\n');
  const f = await r.finished;
  assert.equal(f.code, 1, f.stderr);
  assert.match(f.stderr.trimEnd().split('\n').at(-1)!, /^rbtrace syscount: --save: will not replace .*late\.json: it exists and is not an rbtrace saved run/);
  assert.equal(readFileSync(target, 'utf8'), 'written by someone else\n');
});

test('profile --svg refuses a file that is not an SVG, and replaces one that is', async () => {
  const elf = file('svg-true-copy');
  copyFileSync('/bin/true', elf);
  const before = sha(elf);
  const bad = await runRbtrace(['profile', '--svg', elf, '-d', '0.3']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^rbtrace profile: --svg: will not replace .*svg-true-copy: it exists and is not an SVG file \(remove it first, or give another name\)\n$/);
  assert.equal(sha(elf), before);
  const svg = file('old.svg');
  writeFileSync(svg, '<?xml version="1.0"?>\n<!-- old -->\n<svg xmlns="http://www.w3.org/2000/svg"></svg>\n');
  const ok = await runRbtrace(['profile', '--svg', svg, '-d', '0.3']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(readFileSync(svg, 'utf8'), /rbtrace profile: all processes/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('rbtrace-tmp')), []);
});
