// rbtrace profile end to end: real perf events and stacks on this machine,
// against programs whose time split is known by construction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace, settledLeftovers, sleep } from '../helpers.js';
import { buildHotCold } from '../checks/hot-cold.js';

const OUR_PROGRAMS = ['profile_sample', 'rbtrace_fork', 'rbtrace_exec', 'rbtrace_exit'];

// The program (test/checks/hot-cold.ts): hot() does 9x the work of cold(),
// both called from main's loop, hot through caller(): ~90% of the samples end
// main;caller;hot, ~10% main;cold.
const buildHot = (dir: string, name = 'hotprog'): string => buildHotCold(dir, name);

/** Folded lines: frames (outermost first) and count. */
function parseFolded(text: string): { frames: string[]; count: number }[] {
  return text.trim().split('\n').filter(Boolean).map((l) => {
    const sp = l.lastIndexOf(' ');
    return { frames: l.slice(0, sp).split(';'), count: Number(l.slice(sp + 1)) };
  });
}

/** The user frames of a folded stack (kernel frames end in _[k]). */
const userFrames = (f: string[]) => f.filter((x) => !x.endsWith('_[k]'));

function svgTitles(file: string): string[] {
  // Python's XML parser as the validity oracle: the SVG must be well-formed XML.
  const out = execFileSync('python3', ['-c', `
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = '{http://www.w3.org/2000/svg}'
assert root.tag == ns + 'svg', root.tag
for g in root.iter(ns + 'g'):
    t = g.find(ns + 'title')
    if t is not None: print(t.text)
`, file], { encoding: 'utf8' });
  return out.trim().split('\n');
}

test('a C program: hot() dominates the folded stacks under main;caller, and the SVG is valid XML holding it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-profile-'));
  const bin = buildHot(dir);
  const svg = join(dir, 'cpu.svg');
  // -o -: the folded stacks on stdout, as for `| flamegraph.pl` (the program prints nothing).
  const r = await runRbtrace(['profile', '-F', '99', '--folded', '-o', '-', '--svg', svg, '--', bin, '3']);
  assert.equal(r.code, 0, r.stderr);
  const stacks = parseFolded(r.stdout.split('\n').filter((l) => l.includes(';')).join('\n'));
  const total = stacks.reduce((a, s) => a + s.count, 0);
  // 3 s at 99 Hz is ~300 samples of a CPU-bound program; a loaded 2-CPU machine gives it less CPU.
  assert.ok(total >= 60, `only ${total} samples`);
  const ending = (tail: string) => stacks.filter((s) => userFrames(s.frames).join(';').endsWith(tail)).reduce((a, s) => a + s.count, 0);
  const hot = ending(';main;caller;hot');
  const cold = ending(';main;cold');
  // By construction 90% / 10% of the work; ±15 points for sampling noise
  // (binomial sd ~2% at 300 samples) and the loop's own instructions.
  assert.ok(hot / total >= 0.75, `main;caller;hot has ${hot}/${total}\n${r.stdout}`);
  assert.ok(cold / total >= 0.03 && cold / total <= 0.25, `main;cold has ${cold}/${total}`);
  assert.ok(stacks.every((s) => s.frames[0] === 'hotprog'), 'the comm is the root');
  const titles = svgTitles(svg);
  const hotTitle = titles.find((t) => t.startsWith('hot ('));
  assert.ok(hotTitle, `SVG frames: ${titles.slice(0, 20).join(' | ')}`);
  assert.ok(titles.some((t) => t.startsWith('caller (')) && titles.some((t) => t.startsWith('main (')));
  // The SVG's hot() is the folded stacks' hot(): the same samples.
  // (hot() may sit under more than one path: sum its boxes.)
  const svgHot = titles.filter((t) => t.startsWith('hot (')).reduce((a, t) => a + Number(/\((\d+) samples/.exec(t)![1]), 0);
  assert.equal(svgHot, stacks.filter((s) => s.frames.includes('hot')).reduce((a, s) => a + s.count, 0));
  assert.match(readFileSync(svg, 'utf8'), /<script type="text\/ecmascript"><!\[CDATA\[/);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), [], 'nothing stays loaded');
});

test('-p PID --json: stacks innermost first, with the function names, of that process only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-profile-'));
  const bin = buildHot(dir);
  const child = spawn(bin, ['6'], { stdio: 'ignore' });
  try {
    await sleep(200);
    const r = await runRbtrace(['profile', '--json', '-p', String(child.pid), '-d', '2']);
    assert.equal(r.code, 0, r.stderr);
    const rec = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(rec.frequency_hz, 49);
    assert.ok(rec.samples >= 20, `${rec.samples} samples`);
    for (const s of rec.stacks) assert.deepEqual(s.pids, [child.pid]);
    const top = rec.stacks[0];
    const user = top.frames.filter((f: { kernel: boolean }) => !f.kernel).map((f: { name: string }) => f.name);
    assert.deepEqual(user.slice(0, 3), ['hot', 'caller', 'main'], JSON.stringify(top.frames));
    assert.equal(top.frames.find((f: { name: string }) => f.name === 'hot').module, bin);
    assert.match(top.frames[0].addr, /^0x[0-9a-f]+$/);
    assert.equal(top.truncated, false);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a process in another mount namespace: its binary, invisible from the host, is symbolized through the process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-profile-'));
  const bin = buildHot(dir);
  const hidden = mkdtempSync(join(tmpdir(), 'rbtrace-mnt-'));
  // A private tmpfs over `hidden`, seen only inside the new mount namespace: the host's path is an empty directory.
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none ${hidden} && cp ${bin} ${hidden}/inner && exec ${hidden}/inner 6`], { stdio: 'ignore' });
  try {
    await sleep(500);
    // unshare execs sh, which execs the program: the same pid throughout.
    const pid = child.pid!;
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /inner/);
    assert.throws(() => readFileSync(`${hidden}/inner`), 'not visible from the host');
    const r = await runRbtrace(['profile', '--json', '-p', String(pid), '-d', '2']);
    assert.equal(r.code, 0, r.stderr);
    const top = JSON.parse(r.stdout.trim().split('\n').at(-1)!).stacks[0];
    const user = top.frames.filter((f: { kernel: boolean }) => !f.kernel);
    assert.deepEqual(user.slice(0, 3).map((f: { name: string }) => f.name), ['hot', 'caller', 'main'], JSON.stringify(top.frames));
    assert.equal(user[0].module, `${hidden}/inner`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a Rust program: its demangled function appears in the profile', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-profile-'));
  const src = join(dir, 'spin.rs');
  writeFileSync(src, `
mod app {
    #[inline(never)]
    pub fn spin(n: u64) -> u64 {
        let mut s = 0u64;
        for i in 0..n { s = unsafe { std::ptr::read_volatile(&s.wrapping_mul(31).wrapping_add(i)) }; } // black_box is newer than Debian's rustc 1.63
        s
    }
}
fn main() {
    let t = std::time::Instant::now();
    let mut s = 0;
    while t.elapsed().as_secs_f64() < 2.0 { s += app::spin(5_000_000); }
    println!("{}", s);
}
`);
  const bin = join(dir, 'spin');
  execFileSync('rustc', ['-O', '-C', 'force-frame-pointers=yes', '-C', 'strip=none', src, '-o', bin], { stdio: 'pipe' });
  const r = await runRbtrace(['profile', '-F', '99', '--folded', '--', bin]);
  assert.equal(r.code, 0, r.stderr);
  const stacks = parseFolded(r.stderr.split('\n').filter((l) => l.includes(';')).join('\n'));
  const total = stacks.reduce((a, s) => a + s.count, 0);
  const spin = stacks.filter((s) => s.frames.includes('spin::app::spin')).reduce((a, s) => a + s.count, 0);
  assert.ok(total >= 40 && spin / total >= 0.7, `spin::app::spin in ${spin}/${total}:\n${r.stderr}`);
  assert.ok(!/;_ZN|;_R[A-Z]/.test(r.stderr), 'no mangled names left');
});

test('a hostile command name is escaped in the folded output and in the SVG', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-profile-'));
  const bin = buildHot(dir);
  const evil = join(dir, 'x\x1b[31m<&');
  copyFileSync(bin, evil);
  execFileSync('chmod', ['+x', evil]);
  const svg = join(dir, 'e.svg');
  const r = await runRbtrace(['profile', '-F', '49', '--folded', '--svg', svg, '--', evil, '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes('\x1b') && !r.stderr.includes('\x1b'), 'no raw escape reaches the terminal');
  // A folded field cannot hold control characters (nor ';' or blanks): they become '_'.
  assert.match(r.stderr, /^x_\[31m<&;__libc_start_call_main;main;caller;hot \d+$/m);
  const titles = svgTitles(svg);
  assert.ok(titles.some((t) => t.startsWith('x_[31m<& (')), titles.slice(0, 5).join(' | '));
});

test('bad input: one-line errors, exit 2 for usage and 1 at run time', async () => {
  for (const [args, code, re] of [
    [['profile', '-F', '0', '-d', '1'], 2, /^rbtrace profile: -F/],
    [['profile', '--folded', '--json', '-d', '1'], 2, /--folded and --json/],
    [['profile', '-i', '1', '-d', '1'], 2, /-i/],
    [['profile', '--user-only', '--kernel-only', '-d', '1'], 2, /--user-only and --kernel-only/],
    [['profile', '--svg', '/nonexistent/dir/x.svg', '-d', '1'], 2, /--svg: cannot write in \/nonexistent\/dir: cannot open \/nonexistent\/dir \(ENOENT\)/],
  ] as const) {
    const r = await runRbtrace([...args]);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length <= 2, true, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), [], 'nothing stays loaded');
});
