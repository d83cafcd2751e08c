// doctor must tell the truth for every kind of user (issue 11, item 8): for
// a non-root uid with only CAP_BPF and CAP_PERFMON (ambient capabilities,
// as a systemd unit or setcap would give), with CAP_SYS_ADMIN added, and
// with nothing. Its verdict per tool is checked against really running
// that tool the same way: doctor says yes exactly when the tool runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { RBTRACE } from '../helpers.js';

const NOBODY = '65534';

/** rbtrace as uid 65534 with exactly these capabilities (none: a plain user). */
function asUser(caps: string[], args: string[], timeout = 60000) {
  const capArgs = caps.length ? ['--inh-caps', caps.map((c) => `+${c}`).join(','), '--ambient-caps', caps.map((c) => `+${c}`).join(',')] : [];
  return spawnSync('setpriv', ['--reuid', NOBODY, '--regid', NOBODY, '--clear-groups', ...capArgs, '--', process.execPath, RBTRACE, ...args],
    { encoding: 'utf8', cwd: '/', env: { ...process.env, NO_COLOR: '1' }, timeout });
}

/** A short real run of each tool. */
const RUNS: Record<string, string[]> = {
  execsnoop: ['execsnoop', '--', '/bin/true'],
  syscount: ['syscount', '--', '/bin/true'],
  synqueue: ['synqueue', '-d', '1', '--json'],
  strlat: ['strlat', '--lib', 'c', '--func', 'getpid', '--', '/bin/true'],
  gcstat: ['gcstat', '--', 'ruby', '--disable-gems', '-e', '1'],
  mallocstat: ['mallocstat', '--', '/bin/true'],
  profile: ['profile', '-d', '0.5', '--', '/bin/true'],
  opensnoop: ['opensnoop', '--', '/bin/true'],
  biolatency: ['biolatency', '-d', '0.5'],
  runqlat: ['runqlat', '-d', '0.5'],
  offcputime: ['offcputime', '-d', '0.5', '--', '/bin/true'],
  tcplife: ['tcplife', '-d', '0.5'],
  tcpretrans: ['tcpretrans', '-d', '0.5'],
  rubycalls: ['rubycalls', '--', 'ruby', '--disable-gems', '-e', '1'],
  rubyobjnew: ['rubyobjnew', '--', 'ruby', '--disable-gems', '-e', '1'],
};
/** Tools a user may run with CAP_BPF and CAP_PERFMON alone: no uprobes. */
const WITHOUT_UPROBES = Object.keys(RUNS).filter((t) => !['strlat', 'gcstat', 'mallocstat', 'rubycalls', 'rubyobjnew'].includes(t));

interface Doctor {
  privileges: { root: boolean; sufficient: boolean; uprobes: boolean };
  features: { name: string; available: boolean; detail: string }[];
  tools: { name: string; available: boolean; path?: string; detail?: string }[];
}

function doctor(caps: string[]): Doctor {
  const r = asUser(caps, ['doctor', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function checkVerdicts(caps: string[], expectRunnable: string[]): void {
  const d = doctor(caps);
  assert.deepEqual(d.tools.filter((t) => t.available).map((t) => t.name).sort(), [...expectRunnable].sort(), JSON.stringify(d.tools));
  for (const t of d.tools) {
    const r = asUser(caps, RUNS[t.name]);
    if (t.available) {
      assert.equal(r.status, 0, `${t.name} with ${caps.join('+')}: doctor says yes, the run says: ${r.stderr}`);
    } else {
      assert.equal(r.status, 1, `${t.name} with ${caps.join('+')}: doctor says no (${t.detail}), the run says: ${r.status} ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /need CAP_SYS_ADMIN/);
      assert.match(t.detail ?? '', /need CAP_SYS_ADMIN/);
    }
  }
}

test('CAP_BPF + CAP_PERFMON only: every tool but the uprobe ones runs; those say they need CAP_SYS_ADMIN', () => {
  // profile: a perf event and a BPF program, CAP_PERFMON's own business.
  checkVerdicts(['bpf', 'perfmon'], WITHOUT_UPROBES);
  const d = doctor(['bpf', 'perfmon']);
  assert.equal(d.privileges.sufficient, true);
  assert.equal(d.privileges.uprobes, false);
  const ringbuf = d.features.find((f) => f.name === 'ringbuf')!;
  assert.equal(ringbuf.available, true, 'CAP_BPF can create the probe map');
  // execsnoop's -x needs syscall hooks this kernel gives only through tracefs, which is root's.
  const exec = d.tools.find((t) => t.name === 'execsnoop')!;
  assert.match(exec.path ?? '', /-x unavailable: .*tracefs at \S+ is readable by root only/);
});

test('CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN: every tool runs (no CAP_SYS_RESOURCE needed)', () => {
  checkVerdicts(['bpf', 'perfmon', 'sys_admin'], Object.keys(RUNS));
});

test('a plain user: doctor names the missing privilege, not a kernel fault; tools refuse in one line', () => {
  const r = asUser([], ['doctor']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /privileges\s+not root; CAP_BPF no, CAP_PERFMON no, CAP_SYS_ADMIN no/);
  assert.match(r.stdout, /ringbuf\s+no\s+not probed: creating a BPF map needs root, or CAP_BPF/);
  assert.doesNotMatch(r.stdout, /older than 5\.8/);
  // doctor as root mounts tracefs if it is not; its directory is mode 0700 on Debian's kernels.
  spawnSync(process.execPath, [RBTRACE, 'doctor'], { encoding: 'utf8' });
  const again = asUser([], ['doctor']).stdout;
  const tracefs = existsSync('/sys/kernel/debug/tracing') ? '/sys/kernel/debug/tracing' : '/sys/kernel/tracing';
  if ((statSync(tracefs).mode & 0o005) === 0) assert.match(again, /tracefs\s+no\s+mounted, readable by root only: tracepoint paths need root/);
  else assert.match(again, /tracefs\s+yes\s+mounted/);
  assert.match(again, /not probed: loading BPF needs root, or CAP_BPF and CAP_PERFMON \(run with sudo\)/);
  for (const args of Object.values(RUNS)) {
    const t = asUser([], args);
    assert.equal(t.status, 1, `${args[0]}: ${t.stderr}`);
    assert.match(t.stderr, new RegExp(`^rbtrace ${args[0]}: loading BPF programs needs root, or CAP_BPF and CAP_PERFMON \\(run it with sudo\\)\\n$`));
  }
});
