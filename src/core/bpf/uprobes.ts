// User-space probes for tools: find the function (by raw or demangled
// name) and its file offset with our own ELF reader, find the Ruby a target
// runs, and load an object whose programs are attached as uprobes / USDT
// rather than by their SEC() name.
import { ElfFile, stripVersion, type ElfSymbol } from '../elf/elf.js';
import { demangle, normalizeFunctionQuery } from '../elf/demangle.js';
import { RbtraceError, UsageError } from '../errors.js';
import { checkUprobePrivileges } from '../linux/system.js';
import { executableOf, libraryMatches, libraryOfPid, resolveCommand, systemLibrary } from '../linux/process.js';
import { openFile, type BinaryFile } from '../linux/procfiles.js';
import type { ToolContext, LoadSpec } from '../tool.js';
import { BpfObject, type BpfLink } from './object.js';
import type { Loaded } from './paths.js';
import { CommandProbeFollower, FOLLOW_POLL_MS } from './follow-uprobes.js';
import type { AnySkeleton, ProgramName, Skeleton } from '../skeleton/types.js';

export interface ResolvedFunction {
  /** The raw (mangled) symbol. */
  symbol: string;
  /** Demangled, when it was mangled. */
  demangled?: string;
  /** Offset in the file: what the uprobe attaches to. */
  offset: number;
  address: number;
}

/**
 * Functions of `binary` that `query` names: the raw symbol ('malloc',
 * '_ZN3app5parse17h..E'), or a demangled qualified name ('app::parse',
 * 'ns::Class::method'; a trailing '(...)' is ignored). One entry per
 * address (aliases collapse). Throws a one-line error when nothing matches.
 */
export function resolveFunction(binary: string | BinaryFile, query: string): ResolvedFunction[] {
  const elf = ElfFile.open(binary);
  const funcs = elf.functions();
  const want = normalizeFunctionQuery(query);
  const hits: { sym: ElfSymbol; demangled?: string }[] = funcs.filter((s) => stripVersion(s.name) === want).map((sym) => ({ sym }));
  if (hits.length === 0) {
    for (const sym of funcs) {
      const d = demangle(sym.name);
      if (d !== undefined && d === want) hits.push({ sym, demangled: d });
    }
  }
  if (hits.length === 0) {
    const hint = funcs.length === 0
      ? 'the file has no symbol table (stripped?): give a binary with symbols'
      : suggest(funcs, want) ?? 'list its functions with nm -D (or nm -C) and give one of them';
    throw new RbtraceError(`no function '${query}' in ${binary}`, { hint });
  }
  const byAddr = new Map<number, ResolvedFunction>();
  for (const { sym, demangled } of hits) {
    if (byAddr.has(sym.value)) continue;
    const offset = elf.fileOffset(sym.value);
    if (offset === undefined) continue;
    byAddr.set(sym.value, { symbol: sym.name, demangled, offset, address: sym.value });
  }
  if (byAddr.size === 0) throw new RbtraceError(`function '${query}' in ${binary} is not in a loadable segment`);
  return [...byAddr.values()];
}

/** One function the user named, with every address of that name. */
export interface NamedFunction {
  name: string;
  funcs: ResolvedFunction[];
}

/** Is this a shell-style pattern (* ? [...]) rather than a name? */
export function isFunctionPattern(query: string): boolean {
  return /[*?[]/.test(query);
}

/** A list of names and patterns: 'a,b', 'rb_str_*'; commas inside <> or () (C++) do not split. */
export function splitFunctionList(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '<' || ch === '(') depth++;
    if ((ch === '>' || ch === ')') && depth > 0) depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out.filter(Boolean);
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      const body = glob.slice(i + 1, end);
      re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`.replace(/\\/g, '\\\\');
      i = end;
    } else re += ch.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Every function `queries` name in `binary` (names, as resolveFunction takes
 * them, or shell patterns matched against raw names, else demangled ones),
 * in the order given, a pattern's matches sorted by name. An address named
 * twice (an alias, or a name and a pattern) is timed once, under its first
 * name. More than `max` functions is an error: each costs two probes.
 */
export function resolveFunctions(binary: string | BinaryFile, queries: string[], max: number): NamedFunction[] {
  const out: NamedFunction[] = [];
  const seen = new Set<number>();
  const add = (name: string, funcs: ResolvedFunction[]) => {
    const fresh = funcs.filter((f) => !seen.has(f.address));
    fresh.forEach((f) => seen.add(f.address));
    if (fresh.length && !out.some((o) => o.name === name)) out.push({ name, funcs: fresh });
  };
  for (const q of queries) {
    if (!isFunctionPattern(q)) {
      add(q, resolveFunction(binary, q));
      continue;
    }
    const elf = ElfFile.open(binary);
    const re = globToRegExp(q);
    const byName = new Map<string, ElfSymbol[]>();
    for (const sym of elf.functions()) {
      const raw = stripVersion(sym.name);
      const name = re.test(raw) ? raw : (() => {
        const d = demangle(sym.name);
        return d !== undefined && re.test(d) ? d : undefined;
      })();
      if (name === undefined) continue;
      byName.set(name, [...(byName.get(name) ?? []), sym]);
    }
    if (byName.size === 0) {
      throw new RbtraceError(`no function matches '${q}' in ${binary}`, { hint: 'list its functions with nm -D (or nm -C) and give a pattern that matches some' });
    }
    if (byName.size > max) {
      // A usage error (exit 2): the request is too broad, nothing failed.
      throw new UsageError(`'${q}' matches ${byName.size} functions in ${binary}, more than the ${max} rbtrace times at once`,
        'narrow the pattern, or give the functions as a list: --func a,b');
    }
    for (const name of [...byName.keys()].sort()) {
      const funcs: ResolvedFunction[] = [];
      for (const sym of byName.get(name)!) {
        const offset = elf.fileOffset(sym.value);
        if (offset !== undefined && !funcs.some((f) => f.address === sym.value)) {
          funcs.push({ symbol: sym.name, ...(name !== stripVersion(sym.name) ? { demangled: name } : {}), offset, address: sym.value });
        }
      }
      add(name, funcs);
    }
  }
  if (out.length > max) {
    throw new UsageError(`${out.length} functions named, more than the ${max} rbtrace times at once`, 'give fewer functions, or narrower patterns');
  }
  return out;
}

/**
 * Is this a Go program? Go's linker writes a .go.buildinfo section (Go
 * 1.13+); older or odd builds still define runtime.main.
 */
export function isGoBinary(binary: string | BinaryFile): boolean {
  try {
    const elf = ElfFile.open(binary);
    return elf.section('.go.buildinfo') !== undefined || elf.definesFunction('runtime.main');
  } catch {
    return false;
  }
}

/**
 * uretprobes rewrite the return address on the stack; Go's runtime moves
 * and scans goroutine stacks and crashes on the rewritten address
 * (golang/go#22008). Refuse before anything is attached.
 */
export function refuseGoUretprobes(binary: string | BinaryFile, tool: string): void {
  if (isGoBinary(binary)) {
    throw new RbtraceError(`${binary} is a Go program: ${tool} times calls with uretprobes, which crash Go programs`,
      { hint: 'trace a non-Go binary or library, or use a tool that needs only entry probes' });
  }
}

/** "did you mean" from functions whose (demangled) name ends like the query. */
function suggest(funcs: ElfSymbol[], want: string): string | undefined {
  const tail = want.split('::').pop()!;
  const near = new Set<string>();
  for (const s of funcs) {
    const shown = demangle(s.name) ?? stripVersion(s.name);
    if (shown.endsWith(tail) || shown.endsWith(`::${tail}`)) near.add(shown);
    if (near.size >= 3) break;
  }
  return near.size ? `did you mean ${[...near].map((n) => `'${n}'`).join(', ')}?` : undefined;
}

/** Every Ruby interpreter defines this: how a statically linked ruby is recognised. */
const RUBY_MARKER = 'ruby_run_node';

function definesRuby(path: BinaryFile): boolean {
  try {
    return ElfFile.open(path).definesFunction(RUBY_MARKER);
  } catch {
    return false;
  }
}

/**
 * funclatency's LIB:FUNC ('c:malloc', './app:checksum'): the library part,
 * to be found as --lib finds it. A '::' is a C++/Rust scope ('app::parse'),
 * not a library.
 */
export function splitLibFunction(spec: string): { lib?: string; func: string } {
  const m = /^([^:]+):(?!:)(.+)$/.exec(spec);
  return m ? { lib: m[1], func: m[2] } : { func: spec };
}

/**
 * The target's own executable (-p's, or -- CMD's through PATH) when
 * `defines` finds the functions in it (a program's own function, as
 * `--func checksum -- ./app` means); undefined when there is none or it
 * lacks them (a script, a stripped or unreadable file).
 */
export function executableDefining(target: { pid?: number; command?: { argv: string[] } }, defines: (exe: BinaryFile) => unknown): BinaryFile | undefined {
  let exe: BinaryFile | undefined;
  try {
    if (target.pid) exe = executableOf(target.pid);
    else if (target.command) {
      const path = resolveCommand(target.command.argv[0]);
      if (path) exe = openFile(path);
    }
    if (exe) defines(exe);
    return exe;
  } catch {
    return undefined;
  }
}

/**
 * The file holding a Ruby interpreter's code for a target: the libruby it
 * maps (-p) or links (-- CMD), the executable itself for a statically
 * linked ruby, else (no target, a script, a wrapper) the system's libruby.
 */
export function findRubyBinary(target: { pid?: number; command?: { argv: string[] } }): BinaryFile {
  if (target.pid) {
    const lib = libraryOfPid(target.pid, 'ruby');
    if (lib) return lib;
    const exe = executableOf(target.pid);
    if (exe && definesRuby(exe)) return exe;
    throw new RbtraceError(`process ${target.pid} does not run Ruby (no libruby mapped, no Ruby in its executable)`,
      { hint: 'give the pid of a ruby process' });
  }
  if (target.command) {
    const cmd = resolveCommand(target.command.argv[0]);
    if (cmd) {
      try {
        const exe = openFile(cmd);
        const elf = ElfFile.open(exe);
        const needed = elf.needed().find((n) => libraryMatches(n, 'ruby'));
        if (needed) {
          const lib = systemLibrary(needed);
          if (lib) return openFile(lib);
        }
        if (elf.definesFunction(RUBY_MARKER)) return exe;
      } catch {
        // a script (#!) or unreadable: the system's libruby below
      }
    }
  }
  const lib = systemLibrary('ruby');
  if (!lib) throw new RbtraceError('cannot find libruby on this system', { hint: 'install ruby, or give the library with --lib' });
  return openFile(lib);
}

export interface UserProbeSpec<S extends AnySkeleton = AnySkeleton> extends Omit<LoadSpec<S>, 'paths'> {
  /** Shown with -v and in doctor: 'uprobe', 'usdt'. */
  pathName: string;
  note?: string;
  /** Programs to load (SEC("uprobe"), SEC("usdt"), ...): attached by attach(), not by SEC(). */
  programs: ProgramName<S>[];
  /**
   * Attach the programs once loaded; links belong to the object. `pid`: put
   * them in that process alone (the kernel then traps, and raises USDT
   * semaphores, nowhere else); undefined: in every process mapping the binary.
   */
  attach(obj: BpfObject<S>, pid?: number): BpfLink[];
  /** Programs that are not per process (tracepoints): attached once, before attach(). */
  attachOnce?(obj: BpfObject<S>): BpfLink[];
  /**
   * attach() honours `pid`. Then -p passes its pid, and -- CMD the command's,
   * with each descendant attached as the fork tracker reports it
   * (follow-uprobes.ts), instead of every process on the host trapping.
   */
  attachPerProcess?: boolean;
}

/**
 * ctx.load() for programs attached to user space: one attach path whose
 * attach() puts them on the binary chosen at run time. The object is owned
 * by the session: every link goes when it ends.
 */
export function loadUserProbes<S extends AnySkeleton>(ctx: ToolContext, spec: UserProbeSpec<S>): Loaded<S> & { userLinks: BpfLink[] } {
  checkUprobePrivileges();
  const command = spec.attachPerProcess ? ctx.target.command : undefined;
  const pid = spec.attachPerProcess ? ctx.target.pid ?? command?.pid : undefined;
  const loaded = ctx.load<S>({
    ...spec,
    paths: [{ name: spec.pathName, programs: spec.programs, note: spec.note, attach: (obj) => [...spec.attachOnce?.(obj) ?? [], ...spec.attach(obj, pid)] }],
  });
  if (command) {
    ctx.log.verbose(`probes on the command's processes only (pid ${command.pid}, then each descendant within ${FOLLOW_POLL_MS} ms of its fork)`);
    const follower = new CommandProbeFollower(loaded.obj as unknown as BpfObject, command.pid, (p) => spec.attach(loaded.obj, p), (line) => ctx.log.verbose(line));
    follower.start(ctx.session);
    ctx.session.onFinish(() => {
      if (follower.followed === 0) return;
      ctx.log.warn(`${follower.followed} child process(es) of the command were probed from when rbtrace saw them (within ~${FOLLOW_POLL_MS} ms of their fork): ` +
        'their calls before that are not counted; --all-processes counts them from their first call, but makes every process on the host trap');
    });
  }
  return { ...loaded, userLinks: loaded.links };
}

/**
 * For `rbtrace doctor`: really load `programs` of `object` and attach them
 * with `attach` (tools pass pid = this process, so no other process ever
 * traps), then let everything go. `configure`: before load (shrink maps).
 */
export function probeUserProbes<P extends string, M extends string, R extends object>(skeleton: Skeleton<P, M, R>, programs: P[],
  attach: (obj: BpfObject<Skeleton<P, M, R>>) => unknown, configure?: (obj: BpfObject<Skeleton<P, M, R>>) => void): void;
/** Untyped form (an object by name): prefer the skeleton. */
export function probeUserProbes(object: string, programs: string[], attach: (obj: BpfObject) => unknown, configure?: (obj: BpfObject) => void): void;
export function probeUserProbes(object: AnySkeleton | string, programs: string[], attach: (obj: BpfObject<any>) => unknown,
  configure?: (obj: BpfObject<any>) => void): void {
  checkUprobePrivileges();
  const obj: BpfObject = typeof object === 'string' ? BpfObject.open(object) : BpfObject.open(object);
  try {
    obj.selectPrograms(programs);
    configure?.(obj);
    obj.load();
    attach(obj);
  } finally {
    obj.close();
  }
}
