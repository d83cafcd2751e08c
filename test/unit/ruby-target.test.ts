// --unwind auto's question (src/core/unwind/ruby-target.ts): does a program
// file, or a running process, run Ruby? On Debian's own files: ruby3.1 (an
// ELF linking libruby), gem (`#!/usr/bin/env ruby`), a script naming ruby
// with options, shell scripts, other ELF programs; and live processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processRunsRuby, programRunsRuby } from '../../src/core/unwind/ruby-target.js';
import { sleep } from '../helpers.js';

test('program files: ruby, ruby scripts (env, options) are Ruby; shells, their scripts and other programs are not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-rbtarget-'));
  const script = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, 0o755);
    return p;
  };
  assert.equal(programRunsRuby('/usr/bin/ruby'), true, 'ruby (a link to ruby3.1)');
  assert.equal(programRunsRuby('/usr/bin/gem'), true, 'gem: #!/usr/bin/env ruby');
  assert.equal(programRunsRuby(script('w.rb', '#!/usr/bin/ruby -w\nputs 1\n')), true, '#!/usr/bin/ruby -w');
  assert.equal(programRunsRuby(script('e.rb', '#!/usr/bin/env -S ruby --disable-gems\nputs 1\n')), true, 'env -S ruby');
  assert.equal(programRunsRuby(script('s.sh', '#!/bin/sh\nexec ruby "$@"\n')), false, 'a shell wrapper is not looked into');
  assert.equal(programRunsRuby(script('odd', '#!/nonexistent/\xff\x01 ruby\n')), false, 'an interpreter that does not exist');
  assert.equal(programRunsRuby('/bin/ls'), false);
  assert.equal(programRunsRuby('/usr/bin/perl'), false);
  assert.equal(programRunsRuby(join(dir, 'missing')), false);
});

test('processes: a running ruby is Ruby (exe and maps); a shell is not', async () => {
  const ruby = spawn('ruby', ['-e', 'sleep 5'], { stdio: 'ignore' });
  const sh = spawn('sh', ['-c', 'sleep 5'], { stdio: 'ignore' });
  try {
    await sleep(300);
    assert.equal(processRunsRuby(ruby.pid!), true);
    assert.equal(processRunsRuby(sh.pid!), false);
    assert.equal(processRunsRuby(2 ** 22 + 1), false, 'a pid that cannot exist');
  } finally {
    ruby.kill('SIGKILL');
    sh.kill('SIGKILL');
  }
});
