// Issue 26, finding 6: a setuid command must not outlive a SIGKILLed
// rbtrace. As root: `rbtrace syscount --user U -- newgrp U < f` (f: `exec
// sleep N`); newgrp is Debian's setuid-root binary, and the kernel clears
// the parent-death signal across its exec, so before the fix newgrp and the
// sleep it starts ran on after `kill -9` of rbtrace. Oracle: /proc (the
// processes, by their unique sleep argument) and the cgroup v2 tree.
// Both ways the watchdog kills: cgroup.kill (5.14+), and the freezer then
// SIGKILL per pid (what 5.10 gets; forced with RBTRACE_LEASH=freeze).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RBTRACE, cgroupV2Mount, isCI, sleep } from '../helpers.js';

// newgrp runs the user's login shell: this user has /bin/sh (rbtrace-test has nologin).
const USER = 'rbtrace-sh';
if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', USER]);

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-leash-'));
chmodSync(dir, 0o755);
const strays = new Set<number>();
after(() => {
  for (const p of strays) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
});

/** Pids whose argv is exactly `argv`, from /proc. */
function pidsRunning(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'latin1') === want) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}

async function until<T>(what: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v !== undefined || Date.now() > end) return v;
    await sleep(50);
  }
}

for (const mode of ['kill', 'freeze'] as const) {
  test(`kill -9 rbtrace: newgrp (setuid) and the sleep it runs die with it (${mode === 'kill' ? 'cgroup.kill' : 'freezer, then SIGKILL per pid: the 5.10 way'})`, async (t) => {
    if (!existsSync('/usr/bin/newgrp') || !cgroupV2Mount()) {
      if (isCI) assert.fail('newgrp (login package) and a cgroup v2 mount are needed');
      t.skip('no newgrp or no cgroup v2');
      return;
    }
    const secs = `301.${process.pid}${mode === 'kill' ? 1 : 2}`; // unique: finds only this test's sleep
    const script = join(dir, `f-${mode}`);
    writeFileSync(script, `exec sleep ${secs}\n`, { mode: 0o644 });
    const stdin = openSync(script, 'r');
    const rb = spawn(process.execPath, [RBTRACE, 'syscount', '-v', '--user', USER, '--', 'newgrp', USER], {
      stdio: [stdin, 'ignore', 'pipe'], env: { ...process.env, RBTRACE_LEASH: mode },
    });
    closeSync(stdin);
    let stderr = '';
    rb.stderr!.on('data', (d) => (stderr += d));
    const sleeper = await until(() => pidsRunning(['sleep', secs])[0], 20000);
    assert.ok(sleeper, `the command's sleep never started: ${stderr}`);
    strays.add(sleeper);
    const newgrp = Number(readFileSync(`/proc/${sleeper}/stat`, 'utf8').split(') ')[1].split(' ')[1]); // ppid
    assert.match(readFileSync(`/proc/${newgrp}/cmdline`, 'latin1'), /^newgrp\0/);
    strays.add(newgrp);
    // The attack's premise: both run as the unprivileged user.
    const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
    assert.match(readFileSync(`/proc/${sleeper}/status`, 'utf8'), new RegExp(`^Uid:\\t${uid}\\t`, 'm'));
    const cg = readFileSync(`/proc/${sleeper}/cgroup`, 'utf8').match(/^0::(.*)$/m)![1];

    const t0 = Date.now();
    rb.kill('SIGKILL');
    // 3 s: the watchdog acts as soon as the pipe closes (measured ~0.1 s);
    // the freezer path polls every 50 ms. Past 3 s it did not work.
    const left = await until(() => {
      const alive = [sleeper, newgrp].filter((p) => existsSync(`/proc/${p}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, 'utf8')));
      return alive.length === 0 ? [] : undefined;
    }, 3000);
    assert.deepEqual(left, [], `after kill -9 of rbtrace, still running: ${[sleeper, newgrp].filter((p) => existsSync(`/proc/${p}`)).join(', ')}`);
    assert.match(cg, /\/rbtrace-cmd-\d+-/, stderr);
    assert.match(stderr, /the command ends with rbtrace through cgroup /);
    const gone = await until(() => (existsSync(join(cgroupV2Mount()!, cg)) ? undefined : true), 3000);
    assert.ok(gone, `the command's cgroup ${cg} is left behind`);
    t.diagnostic(`killed and cleaned up ${Date.now() - t0} ms after kill -9`);
  });
}
