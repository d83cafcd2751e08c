// A real Prometheus (Debian's package) scrapes a real rbtrace exporter every
// second, from a generated config, on loopback only, with its storage in a
// temp dir; PromQL over its HTTP API must return the figures of known work:
// N sysfs calls (M of them failing), a backlog-8 listener's 31 overflows.
// Prometheus asks for OpenMetrics first, so its strict parser reads that format.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCI, sleep } from '../helpers.js';
import { attached, buildWorkload, freePort, programIdsOf, stillLoaded, startExporter, type Exporter } from '../exporter-helpers.js';

const PROMETHEUS = '/usr/bin/prometheus';

const PROG = buildWorkload();

const storage = mkdtempSync(join(tmpdir(), 'rbtrace-prometheus-'));
let prom: ChildProcess | undefined;
let promLog = '';
let exp: Exporter | undefined;
let listener: ChildProcess | undefined;

after(async () => {
  listener?.stdin?.end();
  if (prom && prom.exitCode === null) {
    prom.kill('SIGTERM');
    const exited = new Promise((r) => prom!.on('exit', r));
    const timer = setTimeout(() => prom!.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  if (exp && exp.run.child.exitCode === null) exp.run.signal('SIGKILL');
  rmSync(storage, { recursive: true, force: true });
});

async function query(base: string, promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await r.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result;
}

/** Poll a PromQL query until it returns exactly one sample (Prometheus scrapes every second). */
async function waitValue(base: string, promql: string, timeoutMs = 20000): Promise<number> {
  const start = Date.now();
  for (;;) {
    const res = await query(base, promql);
    if (res.length === 1) return Number(res[0].value[1]);
    assert.ok(res.length === 0, `${promql}: ${JSON.stringify(res)}`);
    if (Date.now() - start > timeoutMs) throw new Error(`${promql}: no sample after ${timeoutMs} ms\n${promLog}`);
    await sleep(200);
  }
}

test('Prometheus scrapes the exporter every second; PromQL returns the exact syscall and overflow figures', { skip: !existsSync(PROMETHEUS) && !isCI ? 'no prometheus (scripts/setup.sh installs it)' : false }, async () => {
  // No series limit in the way: other tests on this machine may hold thousands of listeners.
  exp = await startExporter(['--max-series', '1000000']);
  await attached(exp);

  const promPort = await freePort();
  const base = `http://127.0.0.1:${promPort}`;
  const config = join(storage, 'prometheus.yml');
  writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: rbtrace',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${exp.port}']`,
    '',
  ].join('\n'));
  prom = spawn(PROMETHEUS, [
    `--config.file=${config}`, `--storage.tsdb.path=${join(storage, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  prom.stdout!.setEncoding('utf8').on('data', (d: string) => (promLog += d));
  prom.stderr!.setEncoding('utf8').on('data', (d: string) => (promLog += d));

  // Prometheus up, and its first scrape of the exporter done.
  const startedAt = Date.now();
  for (;;) {
    const ready = await fetch(`${base}/-/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (prom.exitCode !== null || Date.now() - startedAt > 30000) throw new Error(`prometheus not ready: ${promLog}`);
    await sleep(100);
  }
  const targetsNow = async () => ((await (await fetch(`${base}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } }).data;
  // A fresh exporter: nobody else calls sysfs(2), so its counter is ours alone.
  const until = async (promql: string, want: number) => {
    const start = Date.now();
    let v = await waitValue(base, promql);
    while (v !== want && Date.now() - start < 15000) {
      await sleep(250);
      v = await waitValue(base, promql);
    }
    return v;
  };
  assert.equal(await until('up{job="rbtrace"}', 1), 1, `${JSON.stringify(await targetsNow())}\n${promLog}`);

  const [N, M] = [4321, 87];
  execFileSync(PROG, ['calls', String(N), String(M), '0', '/nonexistent']);
  listener = spawn(PROG, ['listen', '8'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = Number(await new Promise<string>((resolve) => listener!.stdout!.setEncoding('utf8').once('data', resolve)));
  execFileSync(PROG, ['connect', String(port), '40']);

  const sel = `job="rbtrace",addr="127.0.0.1",port="${port}"`;
  assert.equal(await until('rbtrace_syscalls_total{syscall="sysfs"}', N + M), N + M);
  assert.equal(await until('rbtrace_syscall_errors_total{syscall="sysfs",errno="EINVAL"}', M), M);
  assert.equal(await until(`sum by (port) (rbtrace_listen_overflows_total{${sel}})`, 31), 31);
  assert.equal(await waitValue(base, `rbtrace_listen_accept_queue_length{${sel}} / rbtrace_listen_accept_queue_limit{${sel}}`), 9 / 8);
  assert.equal(await waitValue(base, 'count(rbtrace_exporter_tool_info{job="rbtrace"})'), 4);

  // Scrapes parse (OpenMetrics, as Prometheus asked for it). On a loaded
  // machine (two shared cores) one may exceed the 1 s scrape timeout: that
  // is tolerated, a format error is not.
  const targets = await targetsNow();
  assert.equal(targets.activeTargets.length, 1);
  assert.doesNotMatch(targets.activeTargets[0].lastError, /pars|invalid|unexpected|expected|EOF/i);
  assert.ok(await waitValue(base, 'rbtrace_exporter_scrapes_total{format="openmetrics"}') > 0, 'Prometheus asked for OpenMetrics');
  const samplesScraped = await waitValue(base, 'scrape_samples_scraped{job="rbtrace"}');
  assert.ok(samplesScraped > 100, `samples per scrape: ${samplesScraped}`);

  const ids = programIdsOf(exp.run.child.pid!);
  exp.run.signal('SIGTERM');
  assert.equal((await exp.run.finished).code, 0);
  assert.deepEqual(await stillLoaded(ids), []);
});
