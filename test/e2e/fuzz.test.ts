// Fuzzing the command line: random argument vectors over every tool's real
// flags, learnt from the CLI's own definitions (buildProgram), with values
// from a pool of good, bad and hostile ones. Each run must end by itself
// (runs are forced short with -d 0.3 and killed at a timeout, a failure),
// exit 0, 1 or 2, print no stack trace and no internal error, say a failure in
// one escaped line on stderr, and leave none of our BPF programs loaded.
//
// Seeded and reproducible: the seed is printed; RBTRACE_FUZZ_SEED=N replays
// a run, RBTRACE_FUZZ_COUNT=N changes the number of vectors (default 150).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Option } from 'commander';
import { buildProgram } from '../../src/cli.js';
import { BpfObject, bpfObjectDir } from '../../src/core/bpf/object.js';
import { runRbtrace, sleep } from '../helpers.js';

/** Runs happen here: a fuzzed --save FILE with hostile bytes must not land in the checkout. */
const SCRATCH = mkdtempSync(join(tmpdir(), 'rbtrace-fuzz-'));

const SEED = Number(process.env.RBTRACE_FUZZ_SEED ?? (Date.now() % 2 ** 31));
const COUNT = Number(process.env.RBTRACE_FUZZ_COUNT ?? 150);
/** A run that has not ended by then hangs (the slowest real run, doctor, takes ~3 s). */
const RUN_TIMEOUT_MS = 30000;
/** No new vector after this long (the runs so far are a prefix of the seeded sequence: still reproducible). */
const TIME_BUDGET_MS = 105000;
/** doctor loads every tool's probe: a few seconds each time, so a few vectors only. */
const MAX_DOCTOR = 4;

/** mulberry32: small, seedable, good enough to pick arguments. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Flag {
  flag: string;
  takesValue: boolean;
}

/** Each tool's flags, as the CLI defines them (hidden ones included: they must refuse well too). */
async function toolFlags(): Promise<Map<string, { flags: Flag[]; duration: boolean; command: boolean }>> {
  const { tools } = await buildProgram(() => true);
  const out = new Map<string, { flags: Flag[]; duration: boolean; command: boolean }>();
  for (const [name, { cmd, def }] of tools) {
    // exporter is a daemon: it has no -d and runs until signalled (and binds
    // a port). Its bad input, signals and detach are tested in exporter.test.ts.
    if (name === 'exporter') continue;
    const flags: Flag[] = [];
    for (const o of cmd.options as readonly Option[]) {
      for (const f of [o.short, o.long]) if (f) flags.push({ flag: f, takesValue: o.required || o.optional });
    }
    const honoured = def.traces === false ? [] : def.honours ?? ['pid', 'command', 'interval', 'duration'];
    out.set(name, { flags, duration: honoured.includes('duration'), command: honoured.includes('command') });
  }
  return out;
}

/** Names of every BPF program in our objects: what must not stay loaded. */
function ourProgramNames(): Set<string> {
  const dir = bpfObjectDir();
  const names = new Set<string>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.bpf.o'))) {
    const obj = BpfObject.open(join(dir, f));
    try {
      for (const p of obj.programs()) names.add(p.name.slice(0, 15));
    } finally {
      obj.close();
    }
  }
  return names;
}

/**
 * Processes holding a BPF program (an fd of it, or of a link to it, per
 * /proc/PID/fdinfo). Other engineers' tracers may run beside this test: a
 * program held by a process without our marker in its environment is theirs.
 */
function holders(progId: number): { pid: number; ours: boolean }[] {
  const out: { pid: number; ours: boolean }[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        return new RegExp(`^prog_id:\\s*${progId}$`, 'm').test(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let env = '';
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      // gone
    }
    out.push({ pid: Number(pid), ours: env.split('\0').includes(`RBTRACE_FUZZ_MARK=${MARK}`) });
  }
  return out;
}

/** Flags whose value names a file rbtrace writes. */
const WRITES_FILE = ['--save', '--svg', '-o', '--output'];

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Marks the processes of this test (rbtrace and its -- CMD inherit it). */
const MARK = `${process.pid}-${Date.now()}`;

function loadedPrograms(): { id: number; name: string }[] {
  return JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', maxBuffer: 1 << 26 })) as { id: number; name: string }[];
}

test(`fuzz: ${COUNT} random argument vectors over every tool's flags (seed ${SEED})`, async (t) => {
  t.diagnostic(`fuzz seed ${SEED} (RBTRACE_FUZZ_SEED=${SEED} replays this run)`);
  process.stdout.write(`# fuzz seed ${SEED}: RBTRACE_FUZZ_SEED=${SEED} replays this run\n`);
  const random = rng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const flags = await toolFlags();
  const ours = ourProgramNames();
  const baseline = new Set(loadedPrograms().map((p) => p.id));
  const leftovers = () => loadedPrograms().filter((p) => ours.has(p.name) && !baseline.has(p.id));

  // A process to give -p: it lives for the whole test.
  const sleeper: ChildProcess = spawn('sleep', ['600'], { stdio: 'ignore' });
  const VALUES = [
    '0', '1', '2', '0.3', '5', '-1', '-2', '1e3', '0x10', '.5', '4095', '4096', '65535', '65536', '2147484',
    '4294967296', '99999999999999999999', '', ' ', 'abc', 'ENOENT', 'eacces', 'read,write', 'read,,', 'nosuchcall',
    'c', 'ruby', 'malloc', 'rb_str_new', 'je_', '/bin/true', '/nonexistent/x', 'root', 'nobody', 'fentry', 'kprobe',
    'tracepoint', 'uprobe', '^sh$', '(', '-', '--', 'a\nb', '\x1b]0;PWN\x07\x1b[31m', 'x\u202egpj', String(sleeper.pid),
  ];
  /** Existing files in VALUES, each with a copy for the flags that write (and the bytes both must keep). */
  const SYSTEM_FILES = new Map(['/bin/true'].map((path) => {
    const copy = join(SCRATCH, `copy-of-${path.replace(/\//g, '_')}`);
    copyFileSync(path, copy);
    return [path, { copy, sha: sha256(path) }];
  }));
  const COMMANDS = [['/bin/true'], ['sleep', '0.1'], ['/nonexistent-rbtrace-fuzz'], ['sh', '-c', 'exit 0']];
  const UNKNOWN = ['--bogus', '-Z', '--jsn', '--no-colr', '--pid=1', '--duration=0.3'];
  const GLOBAL = ['--json', '-v', '--no-color'];
  const names = [...flags.keys()];
  let doctors = 0;
  const exits = [0, 0, 0];
  const started = Date.now();
  let ran = 0;

  try {
    for (; ran < COUNT && Date.now() - started < TIME_BUDGET_MS; ran++) {
      const n = ran;
      let tool = pick(names);
      if (tool === 'doctor' && doctors >= MAX_DOCTOR) tool = pick(names.filter((x) => x !== 'doctor'));
      if (tool === 'doctor') doctors++;
      const spec = flags.get(tool)!;
      const argv: string[] = [];
      if (random() < 0.2) argv.push(pick(GLOBAL));
      argv.push(tool);
      const nflags = Math.floor(random() * 5);
      for (let k = 0; k < nflags; k++) {
        if (random() < 0.08) {
          argv.push(pick(UNKNOWN));
          continue;
        }
        const f = pick(spec.flags);
        argv.push(f.flag);
        if (f.takesValue && random() < 0.95) {
          const v = pick(VALUES);
          // A flag that writes a file gets a copy in SCRATCH for an existing
          // system file: rbtrace must refuse to replace it, and if it ever
          // did, only the copy is lost (a fuzzed `--save /bin/true` once
          // replaced the real one).
          argv.push(WRITES_FILE.includes(f.flag) && SYSTEM_FILES.has(v) ? SYSTEM_FILES.get(v)!.copy : v);
        }
      }
      if (random() < 0.05) argv.push(pick(['stray', '/bin/echo']));
      // Never a long run: every vector that could run gets -d 0.3 last (the last -d wins).
      if (spec.duration) argv.push('-d', '0.3');
      if (spec.command || random() < 0.1) {
        const r = random();
        if (r < 0.3) argv.push('--', ...pick(COMMANDS));
        else if (r < 0.35) argv.push('--');
      }

      const what = `vector ${n} (seed ${SEED}): rbtrace ${JSON.stringify(argv)}`;
      const f = await runRbtrace(argv, { timeoutMs: RUN_TIMEOUT_MS, env: { RBTRACE_FUZZ_MARK: MARK }, cwd: SCRATCH });
      assert.ok(f.signal === null, `${what}: killed by ${f.signal} (a hang)\nstderr: ${f.stderr}\nstdout: ${f.stdout.slice(0, 2000)}`);
      assert.ok([0, 1, 2].includes(f.code ?? -1), `${what}: exit ${f.code}\nstderr: ${f.stderr}`);
      assert.doesNotMatch(f.stderr, /^\s+at .+:\d+:\d+\)?$/m, `${what}: a stack trace\n${f.stderr}`);
      assert.doesNotMatch(f.stderr, /internal error/, `${what}: an internal error\n${f.stderr}`);
      assert.doesNotMatch(f.stderr, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/, `${what}: raw control characters on stderr`);
      for (const [path, { copy, sha }] of SYSTEM_FILES) {
        assert.equal(sha256(path), sha, `${what}: ${path} changed`);
        assert.equal(sha256(copy), sha, `${what}: ${copy}, the stand-in for ${path}, was replaced`);
      }
      exits[f.code!]++;
      if (f.code !== 0) {
        // Informational lines (the tool's "Tracing ..." banner, -v diagnostics) may come first; the error is one line.
        const lines = f.stderr.trimEnd().split('\n').filter((l) => !/^(rbtrace \w+: )?(Tracing|Sampling) /.test(l));
        const errors = argv.includes('-v') || argv.includes('--verbose') ? lines.slice(-1) : lines;
        assert.equal(errors.length, 1, `${what}: an error in one line\n${f.stderr}`);
        assert.match(errors[0], /^rbtrace( \w+)?: /, `${what}: the error names rbtrace or the tool\n${f.stderr}`);
      }
      let left = leftovers();
      for (let i = 0; i < 30 && left.length; i++) {
        await sleep(100); // the kernel frees programs a little after their last fd (RCU)
        left = leftovers();
      }
      // Still loaded: ours if a process of this test holds it, or nothing visible does.
      const leaked = left.filter((p) => {
        const h = holders(p.id);
        if (h.length && h.every((x) => !x.ours)) {
          t.diagnostic(`program ${p.name} (id ${p.id}) is held by another tracer (pid ${h.map((x) => x.pid).join(', ')}), not by this test`);
          baseline.add(p.id);
          return false;
        }
        return true;
      });
      assert.deepEqual(leaked.map((p) => p.name), [], `${what}: programs left loaded`);
    }
  } finally {
    sleeper.kill('SIGKILL');
  }
  assert.ok(ran >= Math.min(COUNT, 50), `only ${ran} vectors in ${TIME_BUDGET_MS / 1000} s: each run is far slower than it should be`);
  t.diagnostic(`${ran} of ${COUNT} vectors in ${((Date.now() - started) / 1000).toFixed(1)} s: exit 0 ${exits[0]}, exit 1 ${exits[1]}, exit 2 ${exits[2]}`);
});
