// Comparing a figure of rbtrace's with an oracle that was run twice: the two
// oracle runs show the program's own variance, which is the tolerance,
// plus a per-figure slack each test states and justifies.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

/**
 * Every key of the three maps: rbtrace's value must lie within
 * |oracle1 - oracle2| + slack of the nearer oracle run.
 */
export function assertWithinVariance(what: string, ours: Map<string, number>, o1: Map<string, number>, o2: Map<string, number>, slack: Record<string, number> = {}): void {
  const keys = new Set([...ours.keys(), ...o1.keys(), ...o2.keys()]);
  const bad: string[] = [];
  for (const k of keys) {
    const v = ours.get(k) ?? 0;
    const a = o1.get(k) ?? 0;
    const b = o2.get(k) ?? 0;
    const allowed = Math.abs(a - b) + (slack[k] ?? 0);
    if (Math.min(Math.abs(v - a), Math.abs(v - b)) > allowed) bad.push(`${k}: rbtrace ${v}, oracle ${a} and ${b} (allowed ±${allowed})`);
  }
  assert.deepEqual(bad, [], `${what}:\n${bad.join('\n')}`);
}

/** A fresh temp dir. */
export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `rbtrace-oracle-${tag}-`));
}

/** A small git repository with a few commits (deterministic: fixed dates, names, no user config). */
export function makeGitRepo(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempDir('git');
  const env = {
    ...process.env, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'o', GIT_AUTHOR_EMAIL: 'o@x', GIT_COMMITTER_NAME: 'o',
    GIT_COMMITTER_EMAIL: 'o@x', GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z', GIT_PAGER: 'cat', PAGER: 'cat',
  };
  execFileSync('git', ['init', '-q', dir], { env });
  for (let c = 0; c < 3; c++) {
    for (let f = 0; f < 5; f++) writeFileSync(join(dir, `f${f}.txt`), `file ${f}, commit ${c}\n`.repeat(20 + c));
    execFileSync('git', ['add', '.'], { cwd: dir, env });
    execFileSync('git', ['commit', '-q', '-m', `commit ${c}`], { cwd: dir, env });
  }
  return { dir, env };
}
