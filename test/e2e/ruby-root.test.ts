// The Ruby tools on Debian 13's ruby 3.3, run from its own root in its own
// mount namespace (test/ruby-root.ts). Debian 13's libruby3.3 is built
// without DTrace probes (no .note.stapsdt: readelf -n shows only the build
// id), so rubycalls and rubyobjnew must refuse it with their one-line
// reason, exit 1, and leave nothing attached (gcstat reads the VM's counters
// instead: gcstat-vm.test.ts); the same tools on the host's 3.1 are tested
// against their oracles in gcstat*.test.ts, rubycalls.test.ts and
// rubyobjnew.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, readlinkSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { ElfFile } from '../../src/core/elf/elf.js';
import { openFile } from '../../src/core/linux/procfiles.js';
import { decodeGcInfo, rubyGcLayout } from '../../src/tools/gcstat/layout.js';
import { runRbtrace, sleep } from '../helpers.js';
import { ROOT_RUBY, requireRuby, rubyVersion, skipUnless } from '../ruby-root.js';

const opts = { skip: skipUnless(ROOT_RUBY) };

test('the root runs Debian 13\'s ruby 3.3 in a mount namespace of its own', opts, () => {
  requireRuby(ROOT_RUBY);
  assert.match(rubyVersion(ROOT_RUBY), /^3\.3\.\d+$/);
  const [cmd, ...args] = ROOT_RUBY.argv(['--disable-gems', '-e', 'print File.readlink("/proc/self/ns/mnt")']);
  const inside = execFileSync(cmd, args, { encoding: 'utf8' });
  assert.notEqual(inside, readlinkSync('/proc/self/ns/mnt'), 'its own mount namespace');
  const lib = ROOT_RUBY.rbtraceArgs[1];
  assert.equal(ElfFile.open(lib).sdtNotes().length, 0, 'Debian 13\'s libruby3.3 has no USDT probes: if it gets them, test the tools on it');
});

for (const [tool, probe] of [['rubycalls', 'method__entry'], ['rubyobjnew', 'object__create']]) {
  test(`${tool} on ruby 3.3 (Debian 13 root): one line saying the ruby has no USDT probes, exit 1`, opts, async () => {
    requireRuby(ROOT_RUBY);
    const r = await runRbtrace([tool, ...ROOT_RUBY.rbtraceArgs, '--', ...ROOT_RUBY.argv(['--disable-gems', '-e', 'GC.start'])]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`has no USDT probe ruby:${probe} \\(no \\.note\\.stapsdt at all\\): this Ruby was built without DTrace probes`));
  });
}

// gcstat's layout of 3.3 (rb_gc_count decoded: a hidden ruby_current_vm_ptr
// found through its lea, vm->objspace, profile.count, latest_gc_info before
// it), read from a live 3.3 process, against that process's own GC.count and
// GC.latest_gc_info: what gcstat's USDT mode reads at each collection (for a
// 3.3 built with DTrace probes), and its counters mode reads each interval.
test('gcstat\'s Ruby 3.3 layout: GC.count and GC.latest_gc_info read from a live 3.3 process equal Ruby\'s own', opts, async () => {
  requireRuby(ROOT_RUBY);
  const found = rubyGcLayout(openFile(ROOT_RUBY.rbtraceArgs[1]));
  assert.ok('layout' in found, JSON.stringify(found));
  const layout = found.layout;
  const [cmd, ...args] = ROOT_RUBY.argv(['--disable-gems', '-e',
    'GC.start; 7.times { GC.start(full_mark: false) }; i = GC.latest_gc_info; puts GC.count, i[:major_by].inspect, i[:gc_by]; $stdout.flush; sleep 5']);
  const ruby = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  ruby.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    while (out.split('\n').length < 4) await sleep(50);
    const [count, majorBy, gcBy] = out.trim().split('\n');
    // The ruby3.3 process (unshare and chroot exec into it): the one mapping the root's libruby.
    const pid = Number(execFileSync('pgrep', ['-n', '-f', 'ruby3.3 -C'], { encoding: 'utf8' }).trim());
    const line = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.includes('libruby-3.3') && l.split(/\s+/)[2] === '00000000')!;
    const base = parseInt(line.split('-')[0], 16);
    const fd = openSync(`/proc/${pid}/mem`, 'r');
    const word = (a: number) => {
      const b = Buffer.alloc(8);
      readSync(fd, b, 0, 8, a);
      return Number(b.readBigUInt64LE(0));
    };
    const objspace = word(word(base + layout.vmPtr) + layout.vmObjspace);
    const info = decodeGcInfo(word(objspace + layout.info));
    const gcCount = word(objspace + layout.count);
    closeSync(fd);
    assert.equal(gcCount, Number(count), 'profile.count = GC.count');
    assert.equal(info.major_by ?? 'nil', majorBy === 'nil' ? 'nil' : majorBy.replace(/^:/, ''), 'major_by');
    assert.equal(info.gc_by, gcBy, 'gc_by');
  } finally {
    ruby.kill();
  }
});
