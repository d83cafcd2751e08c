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
    ['biolatency', 'build', 'completion', 'diff', 'doctor', 'execsnoop', 'exporter', 'gcstat', 'mallocstat', 'new', 'offcputime', 'opensnoop', 'profile', 'rubycalls', 'rubyobjnew', 'run', 'runqlat', 'strlat', 'synqueue', 'syscount', 'tcplife', 'tcpretrans']);
  // A tool's own options (from its definition), the common ones, and no one else's.
  assert.deepEqual(complete(script, ['rbtrace', 'syscount', '--la'], dir), ['--latency']);
  assert.deepEqual(complete(script, ['rbtrace', '--json', 'execsnoop', '--max'], dir), ['--max-args', '--max-regression']);
  assert.deepEqual(complete(script, ['rbtrace', 'execsnoop', '-i'], dir), [], 'execsnoop refuses -i: not offered');
  assert.ok(complete(script, ['rbtrace', 'gcstat', '--'], dir).includes('--no-chart'));
  assert.deepEqual(complete(script, ['rbtrace', 'build', 'de'], dir), ['demo.bpf.c']);
  assert.deepEqual(complete(script, ['rbtrace', 'run', 'de'], dir), ['demo.ts']);
  assert.deepEqual(complete(script, ['rbtrace', 'completion', ''], dir), ['bash', 'zsh']);
  assert.ok(complete(script, ['rbtrace', 'syscount', '-L', '--', 'ech'], dir).includes('echo'), 'commands after --');

  const bad = await runRbtrace(['completion', 'fish']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "rbtrace completion: no completion for 'fish' (rbtrace completion bash, or rbtrace completion zsh)\n");
});

/**
 * What an interactive zsh (compinit, the script sourced) puts on the line
 * after `line` and a TAB: zsh's completion system run for real, through zpty.
 */
function zshComplete(script: string, line: string): string {
  const driver = `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'autoload -U compinit && compinit -u; source ${script}; PS1="%% "'
zpty -w z "$1"$'\\t'
sleep 1.5
zpty -r -t z out; zpty -r -t z more
print -r -- "$out$more"
zpty -d z`;
  const out = execFileSync('zsh', ['-f', '-c', driver, 'driver', line], { encoding: 'utf8', timeout: 20000 });
  // The last prompt line, without terminal escapes and the bell.
  const lines = out.replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '').replace(/[\r\x07]/g, '').split('\n').filter((l) => l.includes('% '));
  // Replay backspaces as the terminal would.
  let shown = '';
  for (const c of lines[lines.length - 1].replace(/^.*?% /, '')) shown = c === '\b' ? shown.slice(0, -1) : shown + c;
  return shown.trimEnd();
}

test('rbtrace completion zsh: completes in a real zsh (subcommand, a tool\'s option, after global options)', async () => {
  const r = await runRbtrace(['completion', 'zsh']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^#compdef rbtrace\n/);
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-completion-'));
  const script = join(dir, '_rbtrace');
  writeFileSync(script, r.stdout);
  execFileSync('zsh', ['-n', script]);
  assert.equal(zshComplete(script, 'rbtrace sysc'), 'rbtrace syscount');
  assert.equal(zshComplete(script, 'rbtrace syscount --la'), 'rbtrace syscount --latency');
  assert.equal(zshComplete(script, 'rbtrace --json execsnoop --max-a'), 'rbtrace --json execsnoop --max-args');
  assert.equal(zshComplete(script, 'rbtrace mallocstat -L -- ech'), 'rbtrace mallocstat -L -- echo');
});
