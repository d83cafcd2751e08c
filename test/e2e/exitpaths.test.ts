// Every way a tracing run can end, with and without `-- CMD`, for a ring
// buffer tool (execsnoop) and a map tool (syscount): signals to rbtrace's
// pid and to its process group, a reader that goes away, a closed stdout,
// a full disk, -d, SIGKILL. After each: the documented exit status, errors
// on one line, nothing of ours left loaded, and no command left running
// (man/rbtrace.8, EXIT STATUS and SIGNALS, is the specification).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORT_ON_STDOUT, RBTRACE, Running, heldProgramIds, sleep, type Finished } from '../helpers.js';

const TOOLS = ['execsnoop', 'syscount'] as const;
type Tool = (typeof TOOLS)[number];

const DIR = mkdtempSync(join(tmpdir(), 'rbtrace-exitpaths-'));
// The cases about the report's stream (its reader gone, closed, a full
// disk) put it on stdout with -- CMD too (REPORT_ON_STDOUT), as a script piping it would.
let serial = 0;

/** A `sleep` that only this case runs: its argv is how we find it afterwards. */
function marker(): string {
  return `${4000 + (serial++)}.${process.pid}`;
}

/** Pids of live (not zombie) processes whose argv is exactly `argv`. */
function livePids(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8') !== want) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && state !== 'X') found.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * rbtrace's end: its exit, plus a moment for its output to drain. Not the
 * pipes' close: a command that rbtrace wrongly left running holds them open,
 * and that must fail the test, not hang it.
 */
async function ended(r: Running): Promise<Finished> {
  const exited = new Promise<void>((resolve) => {
    if (r.child.exitCode !== null || r.child.signalCode !== null) resolve();
    else r.child.once('exit', () => resolve());
  });
  await exited;
  await Promise.race([r.finished, sleep(2000)]);
  return { code: r.child.exitCode, signal: r.child.signalCode as NodeJS.Signals | null, stdout: r.stdout, stderr: r.stderr };
}

/** rbtrace's probes are attached (-v says so): note the programs it holds now. */
async function ready(r: Running): Promise<void> {
  await r.ready();
  samplers.get(r)!();
}

/** Pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) kids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return kids;
}

type Out = 'pipe' | 'full' | 'closed';

/** Start rbtrace in its own process group (so that a "Ctrl-C" can go to the group). */
function start(args: string[], out: Out = 'pipe'): Running {
  let file = process.execPath;
  let argv = [RBTRACE, ...args];
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  let fullFd: number | undefined;
  if (out === 'full') stdio[1] = fullFd = openSync('/dev/full', 'w');
  if (out === 'closed') {
    // Node cannot start a child with fd 1 closed; a shell can.
    file = '/bin/bash';
    argv = ['-c', 'exec "$@" >&-', 'sh', process.execPath, RBTRACE, ...args];
  }
  const child = spawn(file, argv, { stdio, detached: true, env: { ...process.env, NO_COLOR: '1' } });
  if (fullFd !== undefined) closeSync(fullFd);
  return watched(new Running(child));
}

/** Note the programs rbtrace holds while it runs (for checkClean). */
const samplers = new WeakMap<Running, () => void>();

function watched(r: Running, pids: () => number[] = () => [r.child.pid!]): Running {
  const ids = new Set<number>();
  held.set(r, ids);
  const sample = () => pids().forEach((pid) => heldProgramIds(pid, ids));
  samplers.set(r, sample);
  const timer = setInterval(sample, 20);
  r.child.on('exit', () => clearInterval(timer));
  return r;
}

/** Ids of every loaded BPF program. */
function loadedProgramIds(): Set<number> {
  const list = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', maxBuffer: 1 << 26 })) as { id: number }[];
  return new Set(list.map((p) => p.id));
}

const held = new WeakMap<Running, Set<number>>();

/** Programs rbtrace held that are still loaded once the kernel's deferred release is done (see settledLeftovers in helpers.ts). */
async function leftovers(r: Running, timeoutMs = 3000): Promise<number[]> {
  const ours = held.get(r)!;
  const t0 = Date.now();
  for (;;) {
    const loaded = loadedProgramIds();
    const left = [...ours].filter((id) => loaded.has(id));
    if (left.length === 0 || Date.now() - t0 > timeoutMs) return left;
    await sleep(50);
  }
}

/** What every exit path must leave: nothing loaded, no command running, no stack trace. */
async function checkClean(tool: Tool, r: Running, cmd?: string[], attached = true): Promise<void> {
  if (attached) assert.ok(held.get(r)!.size > 0, 'rbtrace was seen holding its programs');
  assert.deepEqual(await leftovers(r), [], `nothing of ${tool}'s stays loaded`);
  if (cmd) assert.deepEqual(livePids(cmd), [], `${cmd.join(' ')} is not left running`);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, 'no internal error or stack trace');
}

/** The lines of stderr that report a problem (not -v chatter). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /cannot |error|refused|failed|EPIPE|^\s+at /i.test(l) && !/: attach path \S+ unavailable: /.test(l));
}

const SIGNALS: [NodeJS.Signals, number][] = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1], ['SIGQUIT', 3]];

for (const tool of TOOLS) {
  for (const [sig, signo] of SIGNALS) {
    test(`${tool}: ${sig} without a command: final report, exit 0`, async () => {
      const r = start([tool, '-v']);
      await ready(r);
      r.signal(sig);
      const f = await ended(r);
      assert.equal(f.code, 0, f.stderr);
      if (tool === 'syscount') assert.match(f.stdout, /SYSCALL +COUNT/, 'the final report is printed (stdout is a pipe, not a terminal)');
      await checkClean(tool, r);
    });

    test(`${tool} -- CMD: ${sig} is passed on, CMD waited for, exit 128+${signo}`, async () => {
      const cmd = ['sleep', marker()];
      const r = start([tool, '-v', '--', ...cmd]);
      await ready(r);
      await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
      r.signal(sig);
      const f = await ended(r);
      assert.equal(f.code, 128 + signo, f.stderr);
      if (tool === 'syscount') assert.match(f.stderr, /clock_nanosleep|syscall/, 'the final report is printed (on stderr: -- CMD owns stdout)');
      await checkClean(tool, r, cmd);
    });
  }

  test(`${tool}: Ctrl-C (SIGINT to the process group) -- CMD: exit 130`, async () => {
    const cmd = ['sleep', marker()];
    const r = start([tool, '-v', '--', ...cmd]);
    await ready(r);
    await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
    process.kill(-r.child.pid!, 'SIGINT');
    const f = await ended(r);
    assert.equal(f.code, 130, f.stderr);
    await checkClean(tool, r, cmd);
  });

  test(`${tool}: SIGPIPE sent to rbtrace is ignored (a closed pipe shows as EPIPE), with and without CMD`, async () => {
    for (const withCmd of [false, true]) {
      const cmd = ['sleep', marker()];
      const r = start([tool, '-v', ...(withCmd ? ['--', ...cmd] : [])]);
      await ready(r);
      r.signal('SIGPIPE');
      await sleep(500);
      assert.equal(r.child.exitCode, null, 'still running after SIGPIPE');
      if (withCmd) assert.equal(livePids(cmd).length, 1, 'the command still runs');
      r.signal('SIGINT');
      const f = await ended(r);
      assert.equal(f.code, withCmd ? 130 : 0, f.stderr);
      await checkClean(tool, r, cmd);
    }
  });

  test(`${tool}: stdout's reader goes away (| head): quiet end; with CMD, CMD is stopped`, async () => {
    // Without CMD.
    let r = start([tool, '-v']);
    await ready(r);
    r.child.stdout!.destroy();
    if (tool === 'execsnoop') execFileSync('/bin/true'); // an event to write
    else r.signal('SIGINT'); // syscount writes its report at the end
    let f = await ended(r);
    assert.equal(f.code, 0, f.stderr);
    assert.deepEqual(errorLines(f.stderr), [], 'a reader going away is not an error');
    await checkClean(tool, r);

    // With CMD: execsnoop writes the command's next exec and finds the pipe
    // gone: the command is stopped with SIGTERM; syscount only writes at the
    // end, so the command runs on, traced, until it ends (here: SIGINT).
    const fifo = join(DIR, `go-${serial}`);
    execFileSync('mkfifo', [fifo]);
    const cmd = ['sleep', marker()];
    r = start([tool, '-v', ...REPORT_ON_STDOUT, '--', '/bin/sh', '-c', `read x < ${fifo}; exec ${cmd.join(' ')}`]);
    await ready(r);
    r.child.stdout!.destroy();
    writeFileSync(fifo, 'go\n');
    if (tool === 'syscount') {
      await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
      r.signal('SIGINT');
    }
    f = await ended(r);
    assert.equal(f.code, tool === 'execsnoop' ? 143 : 130, f.stderr);
    assert.deepEqual(errorLines(f.stderr), []);
    await checkClean(tool, r, cmd);
  });

  test(`${tool}: stdout closed at start (>&-): as /dev/null (Node opens it there), CMD waited for`, async () => {
    for (const withCmd of [false, true]) {
      const cmd = ['sleep', marker()];
      const r = start([tool, '-v', ...(withCmd ? [...REPORT_ON_STDOUT, '--', ...cmd] : [])], 'closed');
      await ready(r);
      if (withCmd) await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
      r.signal('SIGINT');
      const f = await ended(r);
      assert.equal(f.code, withCmd ? 130 : 0, f.stderr);
      assert.deepEqual(errorLines(f.stderr), []);
      await checkClean(tool, r, cmd);
    }
  });

  test(`${tool}: full disk (/dev/full): one line naming stdout, exit 1, CMD stopped`, async () => {
    for (const withCmd of [false, true]) {
      const cmd = ['sleep', marker()];
      const r = start([tool, '-v', ...(withCmd ? [...REPORT_ON_STDOUT, '--', ...cmd] : [])], 'full');
      if (tool === 'syscount') {
        // Nothing is written before the final report.
        await ready(r);
        if (withCmd) await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
        r.signal('SIGINT');
      }
      const f = await ended(r);
      assert.equal(f.code, 1, f.stderr);
      assert.deepEqual(errorLines(f.stderr), [
        `rbtrace ${tool}: cannot write to stdout: no space left on device (ENOSPC) (free some space, or write elsewhere)`,
      ]);
      // execsnoop fails on its first write, perhaps before its programs were seen.
      await checkClean(tool, r, cmd, tool === 'syscount');
    }
  });

  test(`${tool}: -d ends the run; a command still running gets SIGTERM (exit 143)`, async () => {
    const cmd = ['sleep', marker()];
    const r = start([tool, '-d', '1', '--', ...cmd]);
    const f = await ended(r);
    assert.equal(f.code, 143, f.stderr);
    await checkClean(tool, r, cmd, false);
  });
}

test('SIGKILL to rbtrace: the kernel kills the command (parent-death signal)', async () => {
  const cmd = ['sleep', marker()];
  const r = start(['execsnoop', '-v', '--', ...cmd]);
  await ready(r);
  await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
  r.signal('SIGKILL');
  await ended(r);
  const t0 = Date.now();
  while (livePids(cmd).length && Date.now() - t0 < 5000) await sleep(50);
  assert.deepEqual(livePids(cmd), [], 'the command died with rbtrace');
  assert.deepEqual(await leftovers(r), []);
});

test('Ctrl-C when CMD ignores SIGINT: rbtrace traces on until CMD ends, with its status', async () => {
  const cmd = ['sleep', marker()];
  // An ignored signal stays ignored across exec: the sleep itself ignores SIGINT.
  const r = start(['syscount', '-v', '--', '/bin/sh', '-c', `trap '' INT; exec ${cmd.join(' ')}`]);
  await ready(r);
  await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
  process.kill(-r.child.pid!, 'SIGINT');
  await r.waitFor(() => /still runs after SIGINT/.test(r.stderr), 10000, 'the note that the command still runs');
  assert.equal(r.child.exitCode, null, 'rbtrace still runs');
  assert.equal(livePids(cmd).length, 1, 'the command still runs, traced');
  r.signal('SIGTERM');
  const f = await ended(r);
  assert.equal(f.code, 143, f.stderr);
  assert.match(f.stderr, / total$/m, 'the final report (on stderr: -- CMD owns stdout)');
  // The sleep was killed in its clock_nanosleep: a call that never returned,
  // not counted (as strace -c), and said with -v.
  assert.match(f.stderr, /not counted: 1 call that never returned to user space \(clock_nanosleep 1\)/, f.stderr);
  await checkClean('syscount', r, cmd);
});

test('a third signal kills a command that ignores them all (exit 137)', async () => {
  const cmd = ['sleep', marker()];
  const r = start(['execsnoop', '-v', '--', '/bin/sh', '-c', `trap '' INT TERM HUP; exec ${cmd.join(' ')}`]);
  await ready(r);
  await r.waitFor(() => livePids(cmd).length === 1, 10000, 'the command');
  r.signal('SIGINT');
  r.signal('SIGTERM');
  await sleep(300);
  assert.equal(livePids(cmd).length, 1, 'two signals: still running');
  r.signal('SIGHUP');
  const f = await ended(r);
  assert.equal(f.code, 137, f.stderr);
  assert.match(f.stderr, /killing \/bin\/sh \(pid \d+\): third signal/);
  await checkClean('execsnoop', r, cmd);
});

test('a real terminal: Ctrl-C reaches CMD once (not passed on a second time), exit 130', async () => {
  // script(1) gives rbtrace a pty as its controlling terminal; \x03 on it is
  // a real Ctrl-C, sent by the kernel to the foreground process group.
  const count = join(DIR, 'ints');
  const ready = join(DIR, 'trap-ready');
  // A second SIGINT during `sleep 0.5` would run the trap again.
  const inner = `trap 'echo x >> ${count}' INT; echo r > ${ready}; sleep 30 & p=$!; wait $p; kill $p; sleep 0.5; exit 130`;
  const shell = `exec ${process.execPath} ${RBTRACE} execsnoop -v -- /bin/sh -c "${inner}"`;
  const child = spawn('script', ['-qfec', shell, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  // script's child is the shell that execs rbtrace.
  const r = watched(new Running(child), () => childrenOf(child.pid!));
  await r.waitFor(() => { try { return readFileSync(ready, 'utf8') !== ''; } catch { return false; } }, 20000, 'the command\'s trap');
  samplers.get(r)!();
  child.stdin!.write('\x03');
  const f = await ended(r);
  child.stdin!.destroy();
  const got = readFileSync(count, 'utf8').split('\n').filter(Boolean).length;
  assert.equal(got, 1, `the command's SIGINT handler ran once (output: ${f.stdout})`);
  assert.equal(f.code, 130, f.stdout);
  await checkClean('execsnoop', r);
});

test('-p on a process that exits: every tool ends with its final report (mallocstat, syscount)', async () => {
  for (const tool of ['mallocstat', 'syscount']) {
    const child = spawn('/bin/sh', ['-c', 'read x; exec /bin/true'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const r = start([tool, '-v', '-p', String(child.pid)]);
    await ready(r);
    child.stdin!.end('go\n');
    // Bounded: a tool that does not stop must fail the test, not hang it.
    const f = await Promise.race([ended(r), sleep(20000).then(() => undefined)]);
    if (!f) {
      r.signal('SIGKILL');
      assert.fail(`${tool} -p still runs 20 s after its process ended`);
    }
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stderr, new RegExp(`process ${child.pid} ended`));
    assert.ok(f.stdout.length > 0, `${tool} printed its final report`);
  }
});

test('write errors of a tool that loads nothing: doctor > /dev/full is exit 1, one line', () => {
  const full = openSync('/dev/full', 'w');
  const r = spawnSync(process.execPath, [RBTRACE, 'doctor'], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 60000 });
  closeSync(full);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'rbtrace doctor: cannot write to stdout: no space left on device (ENOSPC) (free some space, or write elsewhere)\n');
});

test('-- CMD that is neither ELF nor #!: refused with one line (bash would run it in the gate, untraced)', async () => {
  const script = join(DIR, 'no-shebang.sh');
  writeFileSync(script, 'echo ran\n', { mode: 0o755 });
  const r = spawnSync(process.execPath, [RBTRACE, 'syscount', '--', script], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '', 'the script must not run');
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /exec format error/);
});
