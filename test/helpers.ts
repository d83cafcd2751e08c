// Shared test helpers: run rbtrace, wait until its probes are attached,
// build small C programs, and check that nothing stays attached.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RBTRACE = join(ROOT, 'bin/rbtrace');

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class Running {
  stdout = '';
  stderr = '';
  readonly finished: Promise<Finished>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.finished = new Promise((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  /** Resolves once rbtrace says (with -v) that its probes are attached. */
  async ready(timeoutMs = 20000): Promise<void> {
    await this.waitFor(() => /probes attached, tracing/.test(this.stderr), timeoutMs, 'rbtrace to attach');
  }

  async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const start = Date.now();
    while (!cond()) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`rbtrace exited before ${what}: code ${this.child.exitCode}\nstderr: ${this.stderr}\nstdout: ${this.stdout}`);
      }
      if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}\nstderr: ${this.stderr}`);
      await sleep(20);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }
}

/**
 * `-o -`: with -- CMD, the report on stdout (its default there is stderr,
 * the command owning stdout), for checks that read it there.
 */
export const REPORT_ON_STDOUT: readonly string[] = ['-o', '-'];

/** Start rbtrace (as `node bin/rbtrace ARGS`). */
export function startRbtrace(args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: 'ignore' | 'pipe'; cwd?: string } = {}): Running {
  const child = spawn(process.execPath, [RBTRACE, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  return new Running(child);
}

/** Run rbtrace to its end. */
export async function runRbtrace(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Finished> {
  const r = startRbtrace(args, opts);
  const timer = setTimeout(() => r.signal('SIGKILL'), opts.timeoutMs ?? 60000);
  const f = await r.finished;
  clearTimeout(timer);
  return f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Compile a C program in a fresh temp dir; returns the binary's path. */
export function buildC(source: string, name = 'prog', flags: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-test-'));
  const src = join(dir, `${name}.c`);
  const bin = join(dir, name);
  writeFileSync(src, source);
  execFileSync('cc', ['-O1', '-g', '-o', bin, src, ...flags], { stdio: 'pipe' });
  return bin;
}

/** Names of BPF programs loaded in the kernel right now. */
export function loadedProgramNames(): string[] {
  const out = execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return (JSON.parse(out) as { name?: string }[]).map((p) => p.name ?? '');
}

/** Count of BPF links in the kernel right now. */
export function linkCount(): number {
  const out = execFileSync('bpftool', ['-j', 'link', 'list'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return (JSON.parse(out) as unknown[]).length;
}

/** A process's start time (clock ticks since boot), or undefined when it is gone. */
function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]); // field 22, counted from 1 with pid and comm
  } catch {
    return undefined;
  }
}

/**
 * The BPF programs a process holds, from its fds (fdinfo names prog_id for
 * program and link fds). Other rbtrace runs on a shared machine load
 * programs of the same names, so names alone cannot tell ours.
 */
export function heldProgramIds(pid: number, into: Set<number>): void {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return;
  }
  for (const fd of fds) {
    try {
      const m = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^prog_id:\s*(\d+)/m);
      if (m) into.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
}

/** A process's parent pid, or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Is `pid` this test process or one of its descendants? */
function ours(pid: number): boolean {
  for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parentOf(p), hops++) {
    if (p === process.pid) return true;
  }
  return false;
}

/** Another rbtrace, not started by this test (another test run, a benchmark, an operator). */
function otherRbtrace(pid: number): boolean {
  if (ours(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('rbtrace');
  } catch {
    return false;
  }
}

/**
 * Ids of BPF programs every holder of which (a process with the program's
 * fd, or a link's, open: heldProgramIds) is not this test's: one that
 * started before this test run (the `node --test` runner, our parent), such
 * as a benchmark's exporter left running beside the tests, or another
 * rbtrace that this test did not start (two runs on one machine). Not
 * something a test left behind. A program no process holds (pinned) is
 * never foreign.
 */
function foreignProgramIds(): Set<number> {
  const epoch = startTicks(process.ppid) ?? startTicks(process.pid)!;
  const holders = new Map<number, number[]>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)) {
    const ids = new Set<number>();
    heldProgramIds(pid, ids);
    for (const id of ids) holders.set(id, [...(holders.get(id) ?? []), pid]);
  }
  const foreign = (pid: number) => (startTicks(pid) ?? Infinity) < epoch || otherRbtrace(pid);
  return new Set([...holders].filter(([, pids]) => pids.every(foreign)).map(([id]) => id));
}

/**
 * Programs of ours (by name) still loaded: BPF names are cut to 15
 * characters. Programs held only by processes older than the test run are
 * not ours (foreignProgramIds).
 */
export function leftoverPrograms(names: string[]): string[] {
  const wanted = new Set(names.map((n) => n.slice(0, 15)));
  const out = execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const mine = (JSON.parse(out) as { id: number; name?: string }[]).filter((p) => wanted.has(p.name ?? ''));
  if (mine.length === 0) return [];
  const foreign = foreignProgramIds();
  return mine.filter((p) => !foreign.has(p.id)).map((p) => p.name!);
}

export const isCI = process.env.CI === 'true';

/**
 * Programs of ours still loaded once the kernel has finished releasing them:
 * a link's release and the program's free are deferred (RCU, work queues),
 * so a just-exited tracer's programs can stay listed for a few milliseconds.
 * A real leak stays; this waits up to `timeoutMs` for the list to empty.
 */
export async function settledLeftovers(names: string[], timeoutMs = 3000): Promise<string[]> {
  const start = Date.now();
  for (;;) {
    const left = leftoverPrograms(names);
    if (left.length === 0 || Date.now() - start > timeoutMs) return left;
    await sleep(50);
  }
}

/** The cgroup v2 mount, found with findmnt (independently of rbtrace). */
export function cgroupV2Mount(): string | undefined {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'TARGET', '-t', 'cgroup2'], { encoding: 'utf8' }).trim().split('\n')[0] || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The arm64 VM's userland, Debian 12's arm64 packages unpacked (test/vm/arm64-root.sh),
 * for tests that read arm64 binaries on this host. Under CI=true it is built
 * here when absent (the kernel matrix, later in the run, builds the same
 * cache and then finds it done), so those tests run rather than skip;
 * elsewhere undefined when absent.
 */
export function arm64Root(): string | undefined {
  const root = join(ROOT, 'test/vm/cache/arm64-root');
  if (existsSync(join(root, 'usr/lib/aarch64-linux-gnu/libc.so.6'))) return root;
  if (process.env.CI !== 'true') return undefined;
  return execFileSync('bash', [join(ROOT, 'test/vm/arm64-root.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim().split('\n').pop();
}
