// Degrade, never die: a program the kernel refuses costs what it was for,
// not the tool. RBTRACE_REFUSE=<program> makes the loader refuse a program
// as the kernel would (EPERM at load, before verification), so that every
// optional program of every tool is refused in turn here, on any kernel; the
// real refusals of this kernel (iter/bpf_map_elem on some 6.18 builds,
// fentry, kprobes) take the same code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOOLS } from '../../src/tools/registry.js';
import type { AttachPath, OptionalProgram } from '../../src/core/bpf/paths.js';
import { runRbtrace } from '../helpers.js';
import { fullQueueRetransCheck } from '../checks/tcpretrans-fullq.js';
import { synqueueBacklogCheck } from '../checks/synqueue-backlog.js';
import { attached, freePort, get, parseMetrics, startExporter, valueOf } from '../exporter-helpers.js';

interface Pair { tool: string; path: string; program: string }

/** Every (tool, path, optional program) the registry's tools declare. */
async function optionalPrograms(): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for (const entry of TOOLS) {
    const def = await entry.load();
    for (const p of (def.paths ?? []) as AttachPath[]) {
      for (const o of p.optional ?? []) pairs.push({ tool: def.name, path: p.name, program: typeof o === 'string' ? o : (o as OptionalProgram).program });
    }
  }
  return pairs;
}

/**
 * Per tool, an exact check run with one program refused on one forced path.
 * Returns the run (its -v stderr says what was left out), or 'not offered'
 * when this kernel refuses the path itself.
 */
const CHECKS: Record<string, (pair: Pair, env: NodeJS.ProcessEnv, diagnostic: (line: string) => void) => Promise<{ stderr: string } | 'not offered'>> = {
  async synqueue(pair, env) {
    const probe = await runRbtrace(['synqueue', '--json', '-v', '--attach', pair.path, '-d', '0'], { env });
    if (probe.code !== 0 && /the kernel refused (to attach )?program (?!.*RBTRACE_REFUSE)/.test(probe.stderr)) return 'not offered';
    // Without sock:sk_data_ready (refused, or before 6.2) the tracepoint paths see no enqueues.
    const dataReady = / __traceiter_sk_data_ready$/m.test(readFileSync('/proc/kallsyms', 'utf8')) && !/data_ready/.test(pair.program);
    const seesEnqueues = pair.path === 'fentry' || pair.path === 'kprobe' || (dataReady && /attach path: (tp_btf|tracepoint)/.test(probe.stderr) && !/data_ready left out/.test(probe.stderr));
    return synqueueBacklogCheck({ path: pair.path, seesEnqueues, env });
  },
  // tcpretrans's optional programs are -l's: the retransmits stay exact.
  async tcpretrans(pair, env, diagnostic) {
    return fullQueueRetransCheck({ path: pair.path, env, extra: ['-l'], diagnostic });
  },
};

test('every optional program of every tool has a refusal check here', async () => {
  const pairs = await optionalPrograms();
  assert.ok(pairs.some((p) => p.program === 'dump_ownerless'), 'synqueue declares its optional programs');
  for (const p of pairs) assert.ok(CHECKS[p.tool], `${p.tool}: optional program ${p.program} has no refusal check in this file`);
});

test('each optional program refused in turn, on each path this kernel offers: the tool runs, exact, and says what it runs without', async (t) => {
  const ran = new Set<string>();
  for (const pair of await optionalPrograms()) {
    await t.test(`${pair.tool} [${pair.path}] without ${pair.program}`, async (st) => {
      const r = await CHECKS[pair.tool](pair, { RBTRACE_REFUSE: pair.program }, (line) => st.diagnostic(line));
      if (r === 'not offered') return;
      ran.add(`${pair.tool}:${pair.program}`);
      // Refused by RBTRACE_REFUSE, or already by this kernel (then remembered, or its hook missing).
      assert.match(r.stderr, new RegExp(`optional program ${pair.program} left out: `), r.stderr);
    });
  }
  // Every optional program was refused on at least one path that works here.
  const programs = new Set((await optionalPrograms()).map((p) => `${p.tool}:${p.program}`));
  for (const p of programs) assert.ok(ran.has(p), `${p}: no path of this kernel ran it`);
});

test('a refused essential program: one line naming it and the kernel\'s answer, no ulimit hint, exit 1', async () => {
  const r = await runRbtrace(['synqueue', '-d', '1'], { env: { RBTRACE_REFUSE: 'dump_listeners' } });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^rbtrace synqueue: no attach path works on this kernel: .*the kernel refused program dump_listeners \(iter\/tcp\) by RBTRACE_REFUSE: EPERM/);
  // Paths refused for the same reason are named once, not four times.
  assert.equal(lines[0].match(/dump_listeners/g)?.length, 1, lines[0]);
  const v = await runRbtrace(['synqueue', '-v', '-d', '1'], { env: { RBTRACE_REFUSE: 'dump_listeners', RBTRACE_LIBBPF_LOG: '1' } });
  assert.doesNotMatch(v.stderr, /ulimit/);
});

test('doctor names what a tool runs without', async () => {
  const r = await runRbtrace(['doctor', '--json'], { env: { RBTRACE_REFUSE: 'dump_ownerless' } });
  assert.equal(r.code, 0, r.stderr);
  const sq = JSON.parse(r.stdout).tools.find((x: { name: string }) => x.name === 'synqueue');
  assert.equal(sq.available, true, sq.detail);
  assert.match(sq.path, /; listeners no process holds: found by walking rbtrace's network namespace every interval \(iter\/bpf_map_elem refused( by RBTRACE_REFUSE)?: EPERM\)/);
});

test('exporter: a tool that cannot load is left out, the others serve; --require makes it fatal', async () => {
  const refuse = { RBTRACE_REFUSE: 'dump_listeners' };
  const e = await startExporter([], refuse);
  try {
    await attached(e);
    const health = await get(`${e.url}/healthz`);
    assert.equal(health.status, 200, 'every source attached or failed for good');
    const m = parseMetrics((await get(`${e.url}/metrics`)).body);
    assert.equal(valueOf(m, 'rbtrace_exporter_source_up', { tool: 'synqueue' }), 0);
    for (const tool of ['syscount', 'execsnoop', 'gcstat']) assert.equal(valueOf(m, 'rbtrace_exporter_source_up', { tool }), 1, tool);
    assert.ok(m.some((s) => s.name === 'rbtrace_syscalls_total'), 'syscount serves');
    assert.ok(!m.some((s) => s.name.startsWith('rbtrace_listen_')), 'no synqueue metrics');
    assert.match(e.run.stderr, /synqueue left out: no attach path works on this kernel: .*dump_listeners/);
  } finally {
    e.run.signal('SIGTERM');
    assert.equal((await e.run.finished).code, 0);
  }
  const r = await runRbtrace(['exporter', '--listen', `127.0.0.1:${await freePort()}`, '--require', 'synqueue'], { env: refuse });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^rbtrace exporter: --require synqueue: no attach path works on this kernel: .*dump_listeners \(iter\/tcp\)/m);
});

test('exporter with default tools and an optional program refused: all four tools serve, synqueue degraded', async () => {
  const e = await startExporter([], { RBTRACE_REFUSE: 'dump_ownerless' });
  try {
    await attached(e);
    const m = parseMetrics((await get(`${e.url}/metrics`)).body);
    for (const tool of ['syscount', 'synqueue', 'execsnoop', 'gcstat']) assert.equal(valueOf(m, 'rbtrace_exporter_source_up', { tool }), 1, tool);
    assert.equal(valueOf(m, 'rbtrace_exporter_source_degraded', { tool: 'synqueue' }), 1);
    assert.equal(valueOf(m, 'rbtrace_exporter_source_degraded', { tool: 'syscount' }), 0);
    assert.ok(m.some((s) => s.name === 'rbtrace_listen_accept_queue_limit'), 'synqueue serves');
  } finally {
    e.run.signal('SIGTERM');
    assert.equal((await e.run.finished).code, 0);
  }
});

test('refusals that last are remembered for this boot, in a directory of our own; a planted file is ignored', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'rbtrace-run-')), 'rbtrace');
  const env = { RBTRACE_RUN_DIR: dir };
  const first = await runRbtrace(['execsnoop', '-x', '-v', '-d', '0'], { env });
  assert.equal(first.code, 0, first.stderr);
  const refused = /attach path (\w+) unavailable: the kernel refused (to attach )?program (\w+)/.exec(first.stderr);
  if (!refused) {
    // A kernel that takes the best path: nothing to remember.
    assert.match(first.stderr, /attach path: fentry/);
    return;
  }
  assert.equal(lstatSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'refusals.json')).mode & 0o777, 0o600);
  const second = await runRbtrace(['execsnoop', '-x', '-v', '-d', '0'], { env });
  assert.match(second.stderr, new RegExp(`attach path ${refused[1]} unavailable: the kernel refused (to attach )?program ${refused[3]} .*as earlier this boot`));
});
