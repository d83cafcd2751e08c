// The Ruby tools on Debian 13's ruby 3.3, run from its own root in its own
// mount namespace (test/ruby-root.ts). Debian 13's libruby3.3 is built
// without DTrace probes (no .note.stapsdt: readelf -n shows only the build
// id), so every USDT tool must refuse it with its one-line reason, exit 1,
// and leave nothing attached; the same tools on the host's 3.1 are tested
// against their oracles in gcstat*.test.ts, rubycalls.test.ts and
// rubyobjnew.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { ElfFile } from '../../src/core/elf.js';
import { runRbtrace } from '../helpers.js';
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

for (const [tool, probe] of [['gcstat', 'gc__mark__begin'], ['rubycalls', 'method__entry'], ['rubyobjnew', 'object__create']]) {
  test(`${tool} on ruby 3.3 (Debian 13 root): one line saying the ruby has no USDT probes, exit 1`, opts, async () => {
    requireRuby(ROOT_RUBY);
    const r = await runRbtrace([tool, ...ROOT_RUBY.rbtraceArgs, '--', ...ROOT_RUBY.argv(['--disable-gems', '-e', 'GC.start'])]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`has no USDT probe ruby:${probe} \\(no \\.note\\.stapsdt at all\\): this Ruby was built without DTrace probes`));
  });
}
