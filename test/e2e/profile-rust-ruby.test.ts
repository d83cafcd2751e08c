// The talk's workflow (issue 28): a Ruby program calling a Rust library
// (cargo --release: no frame pointers) through Fiddle, its hot function
// known; the flame graph must show <main> -> the Ruby method -> the Rust
// function, demangled, with stacks reaching main. Oracle: perf record
// --call-graph dwarf on the same process and run (its share of the hot
// function, and its demangled name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profileBesidePerf } from './perf-oracle.js';
import { isCI, sleep } from '../helpers.js';

const CARGO_TOML = `[package]
name = "hotlib"
version = "0.1.0"
edition = "2018"

[lib]
crate-type = ["cdylib"]

[profile.release]
debug = false
`;

// crunch is the hot function (nearly all of hotlib_work's time); read_volatile
// keeps the loop (black_box is newer than Debian's rustc 1.63).
const LIB_RS = `mod inner {
    #[inline(never)]
    pub fn crunch(n: u64) -> u64 {
        let mut s = 0u64;
        for i in 0..n {
            s = unsafe { std::ptr::read_volatile(&s.wrapping_mul(31).wrapping_add(i)) };
        }
        s
    }
}

#[no_mangle]
pub extern "C" fn hotlib_work(n: u64) -> u64 {
    inner::crunch(n) ^ 1
}
`;

const APP_RB = `require 'fiddle'
WORK = Fiddle::Function.new(Fiddle.dlopen(ARGV[0])['hotlib_work'], [Fiddle::TYPE_LONG_LONG], Fiddle::TYPE_LONG_LONG)

class Digester
  def digest(n)
    WORK.call(n)
  end
end

d = Digester.new
deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + ARGV[1].to_f
x = 0
while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
  x ^= d.digest(2_000_000)
end
puts x
`;

function hasCargo(): boolean {
  try {
    execFileSync('cargo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('ruby -> Fiddle -> a release Rust library: <main> -> Digester#digest -> hotlib::inner::crunch, stacks to main, share as perf --call-graph dwarf measures', { skip: !hasCargo() && !isCI && 'cargo not on PATH (scripts/setup.sh installs Debian\'s cargo)' }, async () => {
  assert.ok(hasCargo(), 'cargo is not on PATH: scripts/setup.sh installs Debian\'s cargo package');
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-rust-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'Cargo.toml'), CARGO_TOML);
  writeFileSync(join(dir, 'src/lib.rs'), LIB_RS);
  writeFileSync(join(dir, 'app.rb'), APP_RB);
  execFileSync('cargo', ['build', '--release', '--offline', '--quiet'], { cwd: dir, stdio: 'pipe' });
  const lib = join(dir, 'target/release/libhotlib.so');
  // The point of the test: release Rust has no frame pointers (crunch and hotlib_work never set up %rbp).
  const asm = execFileSync('objdump', ['-d', '--no-show-raw-insn', lib], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const body = (sym: RegExp): string => { const at = asm.search(sym); return asm.slice(at, asm.indexOf('\n\n', at)); };
  for (const fn of [/<_ZN6hotlib5inner6crunch\w*>:/, /<hotlib_work>:/]) assert.doesNotMatch(body(fn), /mov\s+%rsp,%rbp/);

  const child = spawn('ruby', [join(dir, 'app.rb'), lib, '9'], { stdio: 'ignore' });
  try {
    await sleep(1000); // fiddle loaded, the library dlopened
    const { r, perf: ps } = await profileBesidePerf(child.pid!, dir, '--folded');
    assert.equal(r.code, 0, r.stderr);
    let total = 0;
    let toMain = 0;
    let hot = 0;
    let shaped = 0;
    let bare = 0;
    for (const l of r.stdout.trim().split('\n')) {
      const sp = l.lastIndexOf(' ');
      const frames = l.slice(0, sp).split(';');
      const n = Number(l.slice(sp + 1));
      if (frames[0] !== 'ruby') continue;
      total += n;
      // Debian's ruby binary has no symbols: its main is `[ruby3.1]`, called by libc's __libc_start_call_main.
      if (!frames.includes('[truncated]') && (frames.includes('main') || frames.includes('__libc_start_call_main'))) toMain += n;
      if (frames[frames.length - 1] !== 'hotlib::inner::crunch') continue;
      hot += n;
      // Outermost first: <main> at the calling line, then the method, Fiddle's C method, ..., the Rust function.
      const m = frames.findIndex((f) => /^<main>_\(.*app\.rb:14\)$/.test(f));
      if (m > 0 && /^Digester#digest_\(.*app\.rb:6\)$/.test(frames[m + 1]) && frames[m + 2] === 'Fiddle::Function#call' && frames.indexOf('hotlib_work') > m + 2) shaped += n;
      // Fiddle calls without the GVL (rb_nogvl): a sample there has no Ruby frames when the VM's
      // running_ec does not name this thread (src/core/unwind/README.md); never wrong ones.
      else if (!frames.some((f) => /_\(.*:\d+\)$/.test(f)) && frames.includes('rb_nogvl')) bare += n;
    }
    // The bar: at least 95 % of the samples reach main.
    assert.ok(total >= 200, `only ${total} samples of ruby`);
    assert.ok(toMain / total >= 0.95, `${toMain} of ${total} samples reach main`);
    // A sample in the Rust function has the whole Ruby path under it, or no Ruby frame at all
    // (measured: 87-92 % have it); none has another Ruby path.
    assert.equal(shaped + bare, hot, `${hot - shaped - bare} samples in crunch with a wrong Ruby path`);
    assert.ok(hot > 0 && shaped / hot >= 0.8, `${shaped} of ${hot} samples in crunch under <main> -> Digester#digest -> Fiddle::Function#call`);
    const theirs = ps.get('hotlib::inner::crunch');
    // perf names the same function the same way (its demangler), and its share agrees within
    // 3 sigma of the difference of two shares of n samples each (n >= 200: hundreds more on a
    // quiet machine), never under 5 points: 3 x sqrt(2) x sqrt(p(1-p)/n).
    assert.ok(theirs !== undefined, `perf has no hotlib::inner::crunch: ${[...ps.keys()].slice(0, 5).join(', ')}`);
    const ours = (100 * hot) / total;
    const p = theirs / 100;
    const tol = Math.max(5, 300 * Math.SQRT2 * Math.sqrt((p * (1 - p)) / total));
    assert.ok(Math.abs(ours - theirs) <= tol, `crunch: rbtrace ${ours.toFixed(1)} %, perf ${theirs.toFixed(1)} % (tolerance ${tol.toFixed(1)})`);
  } finally {
    child.kill('SIGKILL');
  }
});
