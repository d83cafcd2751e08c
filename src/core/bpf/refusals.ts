// When the kernel refuses one of a path's programs: which program, what the
// kernel answered, and remembering it for the rest of this boot, so that the
// next start does not pay for the same refusal again (a refused fentry or
// kprobe path costs a tool ~0.3 s of loading before its tracepoint path).
//
// What is remembered is only what cannot change before a reboot and does not
// depend on the tool's options: a load the kernel refused before verifying
// anything (EPERM from a security policy or a disabled program type,
// EOPNOTSUPP), and an attach to a kernel hook that failed (no kprobes, no
// such tracepoint). A verifier rejection (EINVAL with a log) can depend on
// .rodata, so it is never remembered. The memory lives in /run/rbtrace
// (tmpfs: gone at reboot), is keyed by the boot id, the object file's digest
// and the caller's credentials, and is ignored whenever the file or its
// directory is not exactly what this process would have made.
//
// RBTRACE_REFUSE=prog[,prog...] makes the loader behave as if the kernel
// refused those programs at load with EPERM (tests: every optional program
// refused in turn; man rbtrace.8, ENVIRONMENT). Such refusals are never
// remembered.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { errnoName } from '../linux/names.js';

/** What the kernel (or RBTRACE_REFUSE) answered for one program. */
export interface Refusal {
  program: string;
  /** The program's hook kind, from its SEC(): 'iter/bpf_map_elem', 'fentry', 'kprobe', ... */
  kind: string;
  /** Positive errno. */
  errno: number;
  stage: 'load' | 'attach';
  /** Injected by RBTRACE_REFUSE, not the kernel's answer. */
  injected?: boolean;
  /** Known from an earlier run of this boot, not tried this time. */
  remembered?: boolean;
}

/** The program's hook kind for messages: 'iter/bpf_map_elem' stays whole, 'fentry/tcp_v4_conn_request' is 'fentry'. */
export function hookKind(section: string): string {
  const [kind, sub] = section.split('/');
  return kind === 'iter' && sub ? `${kind}/${sub}` : kind;
}

/** One line: `program dump_ownerless (iter/bpf_map_elem) refused: EPERM`. */
export function describeRefusal(r: Refusal): string {
  const by = r.injected ? ' by RBTRACE_REFUSE' : '';
  const when = r.remembered ? ', as earlier this boot' : '';
  return `the kernel refused ${r.stage === 'attach' ? 'to attach ' : ''}program ${r.program} (${r.kind})${by}: ${errnoName(r.errno)}${when}`;
}

/** The short form for a left-out optional program: `iter/bpf_map_elem refused: EPERM`. */
export function shortRefusal(r: Refusal): string {
  return `${r.kind} ${r.stage === 'attach' ? 'attach ' : ''}refused${r.injected ? ' by RBTRACE_REFUSE' : ''}: ${errnoName(r.errno)}`;
}

/**
 * The program libbpf's log names as the one whose load failed
 * ("prog 'X': BPF program load failed: ..." or "prog 'X': failed to load").
 * libbpf loads programs in order and stops at the first failure.
 */
export function failedProgramInLog(log: readonly string[]): string | undefined {
  for (const line of log) {
    const m = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** Did the verifier look at the program at all? "processed 0 insns" (or no verifier log) means it was refused before. */
export function refusedBeforeVerifier(log: readonly string[]): boolean {
  const processed = log.map((l) => /processed (\d+) insns/.exec(l)).find(Boolean);
  return processed ? processed[1] === '0' : !log.some((l) => l.includes('BEGIN PROG LOAD LOG'));
}

/** libbpf's hint about RLIMIT_MEMLOCK, which is wrong where the kernel accounts BPF memory to the cgroup (5.11+) or the limit is already high. */
export function misleadingMemlockHint(line: string): boolean {
  return /try raising 'ulimit -l'/.test(line);
}

/** RBTRACE_REFUSE's programs (test-only). */
export function injectedRefusals(): Set<string> {
  const v = process.env.RBTRACE_REFUSE;
  return new Set(v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);
}

const EPERM = 1;
const ENOENT = 2;
const EINVAL = 22;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;

/** Kinds whose attach failure is a fact about the kernel (not about a binary or process, as uprobes and perf events are). */
const KERNEL_HOOKS = new Set(['fentry', 'fexit', 'fmod_ret', 'kprobe', 'kretprobe', 'ksyscall', 'kretsyscall', 'tracepoint', 'tp', 'raw_tp', 'raw_tracepoint', 'tp_btf', 'lsm']);

/** Whether a refusal holds until reboot whatever the options (see the top of this file). */
export function lastsThisBoot(r: Refusal, log: readonly string[] = []): boolean {
  if (r.injected) return false;
  if (r.stage === 'attach') return KERNEL_HOOKS.has(r.kind.split('/')[0]) && [ENOENT, EINVAL, EOPNOTSUPP, ENOTSUPP, EPERM].includes(r.errno);
  return [EPERM, EOPNOTSUPP, ENOTSUPP].includes(r.errno) && refusedBeforeVerifier(log);
}

// ---- memory for this boot ---------------------------------------------------

/** tmpfs, root's: gone at reboot. RBTRACE_RUN_DIR moves it (tests). */
const runDir = () => process.env.RBTRACE_RUN_DIR ?? '/run/rbtrace';
const FILE = 'refusals.json';

interface Stored {
  boot: string;
  /** key -> [errno, stage, hook kind] */
  refused: Record<string, [number, 'load' | 'attach', string]>;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Who is asking: root and a process with fewer capabilities may be answered differently. */
function credentials(): string {
  let caps = '';
  try {
    caps = /^CapEff:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  } catch { /* none */ }
  return `${process.geteuid?.() ?? ''}/${caps}`;
}

/** Our directory, only if it is a real directory of ours that nobody else can write. */
function ownDir(create: boolean): boolean {
  const uid = process.geteuid?.();
  const DIR = runDir();
  try {
    if (create) {
      try {
        mkdirSync(DIR, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      }
    }
    const st = lstatSync(DIR);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function readStored(): Stored | undefined {
  if (!ownDir(false)) return undefined;
  const DIR = runDir();
  let fd: number;
  try {
    fd = openSync(`${DIR}/${FILE}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== process.geteuid?.() || st.size > 1 << 20) return undefined;
    const buf = Buffer.alloc(st.size);
    readSync(fd, buf, 0, st.size, 0);
    const parsed = JSON.parse(buf.toString('utf8')) as Stored;
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.boot !== 'string' || typeof parsed.refused !== 'object' || parsed.refused === null) return undefined;
    return parsed;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function writeStored(s: Stored): void {
  if (!ownDir(true)) return;
  const DIR = runDir();
  const tmp = `${DIR}/.${FILE}.${process.pid}.${Date.now()}`;
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, JSON.stringify(s));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, `${DIR}/${FILE}`);
  } catch {
    try { unlinkSync(tmp); } catch { /* not made */ }
  }
}

/** sha1 of an object file (it identifies the programs; ~0.3 ms for 200 KB). */
export function objectDigest(path: string): string {
  try {
    return createHash('sha1').update(readFileSync(path)).digest('hex').slice(0, 16);
  } catch {
    return '';
  }
}

/**
 * What this boot's kernel refused before, for one object file. Reading it
 * costs one small file read; `recall: false` (doctor, which must really try
 * every path) only records.
 */
export class RefusalMemory {
  private readonly boot = bootId();
  private readonly who = credentials();
  private stored: Stored | undefined;

  private readonly recall: boolean;

  constructor(private readonly digest: string, recall = true) {
    this.recall = recall && process.env.RBTRACE_REFUSAL_MEMORY !== '0';
    if (this.recall && this.boot && digest) {
      const s = readStored();
      if (s?.boot === this.boot) this.stored = s;
    }
  }

  private key(program: string, target?: string): string {
    return `${this.who}:${this.digest}:${program}${target ? `@${target}` : ''}`;
  }

  /** A refusal of this program remembered from earlier this boot. */
  recalled(program: string, target?: string): Refusal | undefined {
    if (!this.recall) return undefined;
    const got = this.stored?.refused[this.key(program, target)];
    if (!Array.isArray(got) || typeof got[0] !== 'number' || typeof got[2] !== 'string') return undefined;
    return { program, kind: got[2], errno: got[0], stage: got[1] === 'attach' ? 'attach' : 'load', remembered: true };
  }

  /** Keep a refusal that lasts this boot (lastsThisBoot); others are ignored. */
  remember(r: Refusal, log: readonly string[] = [], target?: string): void {
    if (process.env.RBTRACE_REFUSAL_MEMORY === '0' || r.remembered || !lastsThisBoot(r, log) || !this.boot || !this.digest) return;
    const now = readStored();
    const s: Stored = now?.boot === this.boot ? now : { boot: this.boot, refused: {} };
    s.refused[this.key(r.program, target)] = [r.errno, r.stage, r.kind];
    writeStored(s);
    this.stored = s;
  }
}
