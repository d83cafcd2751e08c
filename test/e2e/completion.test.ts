// rbtrace completion: the bash script, generated from the CLI's commander
// definitions, completes subcommands, a tool's options (from the tool's own
// definition), files after build/run and commands after --, in a real bash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace } from '../helpers.js';

/** What bash offers for `words`, the last one being completed, run in `cwd`. */
function complete(script: string, words: string[], cwd: string): string[] {
  const arr = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync('bash', ['--norc', '-c', `source "$0"; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _rbtrace; printf '%s\\n' "\${COMPREPLY[@]}"`, script],
    { cwd, encoding: 'utf8' });
  return [...new Set(out.split('\n').filter(Boolean))].sort();
}

test('rbtrace completion bash: subcommands, each tool\'s options, files, commands after --', async () => {
  const r = await runRbtrace(['completion', 'bash']);
  assert.equal(r.code, 0, r.stderr);
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-completion-'));
  const script = join(dir, 'rbtrace.bash');
  writeFileSync(script, r.stdout);
  for (const f of ['demo.bpf.c', 'demo.ts', 'demo.bpf.o', 'notes.txt']) writeFileSync(join(dir, f), '');

  assert.deepEqual(complete(script, ['rbtrace', 's'], dir), ['strlat', 'synqueue', 'syscount']);
  assert.deepEqual(complete(script, ['rbtrace', ''], dir).filter((w) => !w.startsWith('-')),
    ['build', 'completion', 'diff', 'doctor', 'execsnoop', 'exporter', 'gcstat', 'mallocstat', 'new', 'run', 'strlat', 'synqueue', 'syscount']);
  // A tool's own options (from its definition), the common ones, and no one else's.
  assert.deepEqual(complete(script, ['rbtrace', 'syscount', '--la'], dir), ['--latency']);
  assert.deepEqual(complete(script, ['rbtrace', '--json', 'execsnoop', '--max'], dir), ['--max-args', '--max-regression']);
  assert.deepEqual(complete(script, ['rbtrace', 'execsnoop', '-i'], dir), [], 'execsnoop refuses -i: not offered');
  assert.ok(complete(script, ['rbtrace', 'gcstat', '--'], dir).includes('--no-chart'));
  assert.deepEqual(complete(script, ['rbtrace', 'build', 'de'], dir), ['demo.bpf.c']);
  assert.deepEqual(complete(script, ['rbtrace', 'run', 'de'], dir), ['demo.ts']);
  assert.deepEqual(complete(script, ['rbtrace', 'completion', ''], dir), ['bash', 'zsh']);
  assert.ok(complete(script, ['rbtrace', 'syscount', '-L', '--', 'ech'], dir).includes('echo'), 'commands after --');

  const zsh = await runRbtrace(['completion', 'zsh']);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^#compdef rbtrace\n/);
  assert.match(zsh.stdout, /syscount\) _arguments -s .*'\(-L --latency\)'\{-L,--latency\}'\[/);
  const bad = await runRbtrace(['completion', 'fish']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "rbtrace completion: no completion for 'fish' (rbtrace completion bash, or rbtrace completion zsh)\n");
});
