// What `-- CMD` starts with: exactly the fds and environment it would get
// without rbtrace, under every tracing tool, and --user's uid, gid and
// groups (man/rbtrace.8, COMMON OPTIONS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type StdioOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RBTRACE, buildC } from '../helpers.js';

const DIR = mkdtempSync(join(tmpdir(), 'rbtrace-command-'));

// A program that prints the fds it was given and its environment into a file.
const SHOW = buildC(`
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
  FILE *out = fopen(argv[1], "w");
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d) || atoi(e->d_name) == fileno(out)) continue;
    char p[64], t[4096] = ""; snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(p, t, sizeof t - 1); if (n > 0) t[n] = 0;
    if (!strncmp(t, "pipe:", 5) || !strncmp(t, "socket:", 7)) t[4] = 0; /* inode numbers differ per run */
    fprintf(out, "fd %s %s\\n", e->d_name, t);
  }
  for (char **v = environ; *v; v++) fprintf(out, "env %s\\n", *v);
  return 0;
}`, 'show');

test('CMD gets exactly the fds and environment it gets without rbtrace, under every tool', async () => {
  // Extra fds as a caller might pass them: a low one (Node marks 3..16
  // close-on-exec at start-up), a high one, and a pipe end given twice.
  const low = openSync('/etc/hostname', 'r');
  const high = openSync('/etc/passwd', 'r');
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  for (let i = 3; i <= 40; i++) stdio[i] = i === 5 ? low : i === 40 ? high : 'ignore';
  // Without PWD and SHLVL, which a bash gate would add (the perl gate adds
  // nothing; test/e2e/command-env.test.ts compares bytes and order).
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.PWD;
  delete env.SHLVL;
  const run = (argv: string[], file: string) => {
    const r = spawnSync(argv[0], argv.slice(1), { stdio, env, encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).sort();
  };
  const plainFile = join(DIR, 'plain');
  const plain = run([SHOW, plainFile], plainFile);
  assert.ok(plain.includes('fd 5 /etc/hostname') && plain.includes('fd 40 /etc/passwd'), plain.join('\n'));
  const tools: [string, ...string[]][] = [
    ['execsnoop'], ['syscount'], ['mallocstat'], ['strlat', '--lib', 'c', '--func', 'malloc'], ['synqueue'], ['gcstat'],
  ];
  for (const [tool, ...extra] of tools) {
    const file = join(DIR, `under-${tool}`);
    const traced = run([process.execPath, RBTRACE, tool, ...extra, '--', SHOW, file], file);
    assert.deepEqual(traced, plain, `${tool}: the command's fds and environment`);
  }
  closeSync(low);
  closeSync(high);
});

test('--user: the command runs with the user\'s uid, gid and groups; the tracing stays root\'s', async () => {
  const user = 'rbtrace-u-test';
  spawnSync('userdel', [user], { stdio: 'ignore' });
  spawnSync('groupdel', [`${user}-x`], { stdio: 'ignore' });
  execFileSync('groupadd', [`${user}-x`]);
  execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '-G', `${user}-x`, user]);
  try {
    const expected = execFileSync('id', [user], { encoding: 'utf8' }).trim();
    const uid = execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim();
    for (const spec of [user, uid]) {
      const r2 = spawnSync(process.execPath, [RBTRACE, 'syscount', '--user', spec, '--', '/usr/bin/id'], { encoding: 'utf8', timeout: 30000, cwd: '/' });
      assert.equal(r2.status, 0, r2.stderr);
      // stdout is id's alone; the table is on stderr (-- CMD owns stdout).
      assert.equal(r2.stdout, `${expected}\n`, `id under --user ${spec}`);
      assert.match(r2.stderr, /getgroups|execve/, 'and its syscalls were counted');
    }
    // A uid with no passwd entry: that uid, the same number as gid, no groups.
    const r3 = spawnSync(process.execPath, [RBTRACE, 'syscount', '--user', '54321', '--', '/usr/bin/id'], { encoding: 'utf8', timeout: 30000, cwd: '/' });
    assert.ok(r3.stdout.startsWith('uid=54321 gid=54321 groups=54321'), r3.stdout);
    // Usage errors: out of range, unknown, without -- CMD.
    for (const [args, msg] of [
      [['--user', '4294967295', '--', '/bin/true'], /^rbtrace syscount: --user 4294967295 is not a valid uid/],
      [['--user', 'no-such-user-zz', '--', '/bin/true'], /^rbtrace syscount: --user no-such-user-zz: no such user/],
      [['--user', 'nobody', '-d', '0'], /^rbtrace syscount: --user applies to a command started with -- CMD/],
    ] as [string[], RegExp][]) {
      const e = spawnSync(process.execPath, [RBTRACE, 'syscount', ...args], { encoding: 'utf8', timeout: 30000 });
      assert.equal(e.status, 2, e.stderr);
      assert.match(e.stderr, msg);
      assert.equal(e.stderr.trim().split('\n').length, 1);
    }
  } finally {
    spawnSync('userdel', [user], { stdio: 'ignore' });
    spawnSync('groupdel', [`${user}-x`], { stdio: 'ignore' });
  }
});
