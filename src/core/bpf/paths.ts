// Attach paths: a tool lists the ways its probes can hook the kernel, best
// first (fentry, then kprobe, then tracepoints, ...). The SDK really tries
// each one in turn (open, load, attach) and keeps the first that works, as
// libbpf-tools do with fentry_can_attach/kprobe_exists, but without guessing:
// the kernel's answer to the real program is the probe.
//
// Within a path, a program is essential (the path fails without it, and the
// next is tried) or optional (AttachPath.optional: the tool runs without it,
// at some cost it states). Optional is decided by the kernel's answer, not a
// guess: a hook the kernel lacks, a program it refuses to load, an attach it
// refuses. A refused optional program is named from libbpf's log, and the
// object is loaded again without it. Refusals that last until reboot are
// remembered (refusals.ts), so the next start skips them at no cost.
//
// RBTRACE_ATTACH=<path> (or the hidden --attach option) forces one path and
// disables fallback, so tests can exercise each path and notice a broken one.
// RBTRACE_REFUSE=<program,...> refuses programs as the kernel would (tests).
import { BpfObject, type BpfLink, type BpfProgram } from './object.js';
import { RbtraceError, UsageError } from '../errors.js';
import { ensureTracefs } from '../linux/system.js';
import { hookPresent, releaseKernelBtf } from './kernel-targets.js';
import {
  RefusalMemory, describeRefusal, failedProgramInLog, hookKind, injectedRefusals, objectDigest, shortRefusal, type Refusal,
} from './refusals.js';
import type { AnySkeleton, ProgramName } from '../skeleton/types.js';

/** An optional program, with what the tool does without it (said with -v and by doctor). */
export interface OptionalProgram<S extends AnySkeleton = AnySkeleton> {
  program: ProgramName<S>;
  /** E.g. 'listeners no process holds: found by walking the namespace every interval'. */
  without: string;
  /**
   * Attached by the tool once loaded (Loaded.attachOptional: an iterator over
   * a map of the object), not as its SEC() says.
   */
  attachedByTool?: boolean;
}

/** S: the object's generated skeleton, which checks every program name. */
export interface AttachPath<S extends AnySkeleton = AnySkeleton> {
  /** Shown with -v and in doctor: 'fentry', 'kprobe', 'tracepoint', 'raw_tp', 'uprobe', ... */
  name: string;
  /** Essential programs of the object that this path loads and attaches (by their SEC()). */
  programs: ProgramName<S>[];
  /** fentry/fexit programs whose kernel function is chosen at run time. */
  attachTargets?: Partial<Record<ProgramName<S>, string>>;
  /**
   * Attach the loaded programs yourself (uprobes and USDT on a binary chosen
   * at run time) instead of as their SEC() names say. Links belong to the object.
   */
  attach?(obj: BpfObject<S>): BpfLink[];
  /** Why this path is (or is not) the better one, for -v. */
  note?: string;
  /**
   * Programs the tool can run without. Each is left out (said with -v and by
   * doctor, with its `without`) when the kernel lacks its hook (judged from
   * its SEC() by kernel-targets.ts), refuses to load it, or refuses to attach
   * it. A bare name states no cost. Loaded.has() says which are in.
   */
  optional?: (ProgramName<S> | OptionalProgram<S>)[];
  /**
   * Essential programs loaded with the path but attached by the tool once it
   * is loaded (BpfProgram.attachIterMap), not as their SEC() says. Not in
   * Loaded.links.
   */
  loadOnly?: ProgramName<S>[];
}

export interface LoadOptions<S extends AnySkeleton = AnySkeleton> {
  /** The object's generated skeleton (typed), or build/bpf/<object>.bpf.o. */
  object: S | string;
  /** The object file, when not where the skeleton's name says. */
  objectPath?: string;
  paths: AttachPath<S>[];
  /** Programs loaded whatever the path (e.g. the -- CMD fork tracker), not auto-attached here. */
  alwaysLoad?: string[];
  /** Called on each freshly opened object before load: set .rodata, resize maps. */
  configure?: (obj: BpfObject<S>) => void;
  /** Force one path by name (else RBTRACE_ATTACH, else try them in order). */
  force?: string;
  /** Diagnostics (-v). */
  log?: (line: string) => void;
  /** Try every program even if this boot refused it before (doctor). */
  fresh?: boolean;
}

/** An optional program the tool runs without, and why. */
export interface LeftOut<S extends AnySkeleton = AnySkeleton> {
  program: ProgramName<S>;
  /** Why: 'no sk_data_ready tracepoint in the kernel's BTF', 'iter/bpf_map_elem refused: EPERM'. */
  reason: string;
  /** What the tool does without it, if the path says. */
  without?: string;
}

export interface Loaded<S extends AnySkeleton = AnySkeleton> {
  obj: BpfObject<S>;
  path: AttachPath<S>;
  /** The essential programs' links, in `programs` order (empty with a custom attach). */
  links: BpfLink[];
  /** Why earlier paths were passed over. */
  skipped: { path: string; reason: string }[];
  /** Optional programs left out, with why. */
  leftOut: LeftOut<S>[];
  /** Is this program (essential, or optional and not left out) loaded? */
  has(program: ProgramName<S>): boolean;
  /** The link of a program attached as its SEC() says (essential or optional); undefined when left out. */
  link(program: ProgramName<S>): BpfLink | undefined;
  /**
   * Attach an optional program the path marks attachedByTool. If it is left
   * out, or the attach fails, undefined (the failure joins leftOut and -v).
   */
  attachOptional(program: ProgramName<S>, attach: (prog: BpfProgram) => BpfLink): BpfLink | undefined;
  /** One line per left-out program: `<without> (<reason>)`, or `<program> left out (<reason>)`. */
  degraded(): string[];
}

export function forcedPath(explicit?: string): string | undefined {
  return explicit || process.env.RBTRACE_ATTACH || undefined;
}

function optionalSpecs<S extends AnySkeleton>(path: AttachPath<S>): OptionalProgram<S>[] {
  return (path.optional ?? []).map((o) => (typeof o === 'string' ? { program: o, without: '' } : o));
}

/** A program refused by the kernel (or RBTRACE_REFUSE), carried out of one load attempt. */
class ProgramRefused extends RbtraceError {
  constructor(readonly refusal: Refusal, details?: string) {
    super(describeRefusal(refusal), { details });
  }
}

/** Open, configure, load and attach the first path that works. */
export function loadWithPaths<S extends AnySkeleton>(opts: LoadOptions<S>): Loaded<S> {
  const forced = forcedPath(opts.force);
  let candidates = opts.paths;
  if (forced) {
    candidates = opts.paths.filter((p) => p.name === forced);
    if (candidates.length === 0) {
      throw new UsageError(`attach path '${forced}' is not one of this tool's (${opts.paths.map((p) => p.name).join(', ')})`,
        'unset RBTRACE_ATTACH or pick one of those');
    }
  }
  const skipped: { path: string; reason: string }[] = [];
  let lastError: unknown;
  let memory: RefusalMemory | undefined;
  for (const path of candidates) {
    try {
      const loaded = loadPath(opts, path, () => (memory ??= refusalMemory(opts)));
      releaseKernelBtf(); // hookPresent()'s; not needed again, and tens of MB
      return { ...loaded, skipped };
    } catch (err) {
      lastError = err;
      const reason = err instanceof Error ? err.message : String(err);
      skipped.push({ path: path.name, reason });
      opts.log?.(`attach path ${path.name} unavailable: ${reason}`);
    }
  }
  releaseKernelBtf();
  if (candidates.length === 1 && lastError instanceof RbtraceError) {
    const e = lastError;
    throw new RbtraceError(`${e.message}${forced ? ` (attach path '${forced}' forced)` : ''}`,
      { hint: e.hint ?? (forced ? 'rbtrace doctor shows the attach paths this kernel allows; without --attach the first that works is used' : undefined), details: e.details, exitCode: e.exitCode });
  }
  throw new RbtraceError(`no attach path works on this kernel: ${summarize(skipped)}`,
    { hint: 'run rbtrace doctor to see what this kernel offers', details: lastError instanceof RbtraceError ? lastError.details : undefined });
}

/** Paths that failed for the same reason share one mention: `tp_btf, tracepoint: <reason>`. */
function summarize(skipped: { path: string; reason: string }[]): string {
  const byReason = new Map<string, string[]>();
  for (const s of skipped) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.path]);
  return [...byReason].map(([reason, paths]) => `${paths.join(', ')}: ${reason}`).join('; ');
}

function refusalMemory<S extends AnySkeleton>(opts: LoadOptions<S>): RefusalMemory {
  const file = BpfObject.resolvePath(opts.objectPath ?? opts.object);
  return new RefusalMemory(objectDigest(file), !opts.fresh);
}

/**
 * One path: load it with every optional program it can have, leaving out
 * each the kernel refuses, one at a time (libbpf stops at the first refused
 * program); then attach. Throws if an essential program is refused.
 */
function loadPath<S extends AnySkeleton>(opts: LoadOptions<S>, path: AttachPath<S>, memory: () => RefusalMemory): Omit<Loaded<S>, 'skipped'> {
  const injected = injectedRefusals();
  const specs = optionalSpecs(path);
  const leftOut: LeftOut<S>[] = [];
  // Said with -v once the path is chosen (another path's would be noise); later ones (attachOptional) at once.
  let chosen = false;
  const say = (l: LeftOut<S>) => opts.log?.(`optional program ${l.program} left out: ${l.reason}${l.without ? `; without it, ${l.without}` : ''}`);
  const leaveOut = (spec: OptionalProgram<S>, reason: string) => {
    const l: LeftOut<S> = { program: spec.program, reason, ...(spec.without ? { without: spec.without } : {}) };
    leftOut.push(l);
    if (chosen) say(l);
  };
  const target = (p: ProgramName<S>) => path.attachTargets?.[p];

  // Essential programs this boot refused before: the path is passed over at no cost.
  for (const p of path.programs) {
    const r = memory().recalled(p, target(p));
    if (r) throw new ProgramRefused(r);
  }
  let wanted = specs.filter((s) => {
    const r = memory().recalled(s.program, target(s.program));
    if (r) leaveOut(s, shortRefusal(r) + ', as earlier this boot');
    return !r;
  });

  for (;;) {
    let obj: BpfObject<S> | undefined;
    try {
      obj = openAndLoad(opts, path, wanted, injected, leftOut, leaveOut, (r, log) => memory().remember(r, log, target(r.program as ProgramName<S>)));
      const loadedObj = obj;
      const optionalIn = new Set(wanted.filter((s) => !leftOut.some((l) => l.program === s.program)).map((s) => s.program));
      const links = new Map<string, BpfLink>();
      const attachOne = (name: ProgramName<S>): BpfLink => {
        const prog = loadedObj.program(name);
        if (/^(tracepoint|tp)\//.test(prog.section)) {
          if (ensureTracefs() === 'mounted') opts.log?.('mounted tracefs (tracepoint programs read event ids from it)');
        }
        try {
          return prog.attach();
        } catch (err) {
          const refusal: Refusal = { program: name, kind: hookKind(prog.section), errno: errnoOf(err), stage: 'attach' };
          if (refusal.errno) memory().remember(refusal, [], target(name));
          throw err instanceof RbtraceError ? new RbtraceError(describeRefusal(refusal), { details: err.details }) : err;
        }
      };
      const essential = path.attach ? path.attach(loadedObj) : path.programs.map((name) => {
        const l = attachOne(name);
        links.set(name, l);
        return l;
      });
      if (!path.attach) {
        for (const s of specs) {
          if (!optionalIn.has(s.program) || s.attachedByTool) continue;
          try {
            links.set(s.program, attachOne(s.program));
          } catch (err) {
            optionalIn.delete(s.program);
            leaveOut(s, (err as Error).message.replace(/^the kernel refused to attach program \S+ \(([^)]*)\)/, '$1 attach refused'));
          }
        }
      }
      opts.log?.(`attach path: ${path.name}${path.note ? ` (${path.note})` : ''}`);
      chosen = true;
      leftOut.forEach(say);
      opts.log?.(`CO-RE against ${loadedObj.btfCustomPath ? `the build's minimized BTF (${loadedObj.btfCustomPath})` : 'the kernel\'s BTF'}`);
      const essentialSet = new Set<string>([...path.programs, ...(path.loadOnly ?? [])]);
      return {
        obj: loadedObj, path, links: essential, leftOut,
        has: (p) => essentialSet.has(p) || optionalIn.has(p),
        link: (p) => links.get(p),
        attachOptional(p, attach) {
          const spec = specs.find((s) => s.program === p);
          if (!spec) throw new Error(`${p} is not an optional program of attach path ${path.name}`);
          if (!optionalIn.has(p)) return undefined;
          try {
            return attach(loadedObj.program(p));
          } catch (err) {
            optionalIn.delete(p);
            const refusal: Refusal = { program: p, kind: hookKind(loadedObj.program(p).section), errno: errnoOf(err), stage: 'attach' };
            leaveOut(spec, refusal.errno ? shortRefusal(refusal) : (err as Error).message);
            return undefined;
          }
        },
        degraded: () => leftOut.map((l) => (l.without ? `${l.without} (${l.reason})` : `${l.program} left out (${l.reason})`)),
      };
    } catch (err) {
      obj?.close();
      if (err instanceof ProgramRefused) {
        const spec = wanted.find((s) => s.program === err.refusal.program);
        if (spec) {
          // Optional: load again without it.
          wanted = wanted.filter((s) => s !== spec);
          leaveOut(spec, shortRefusal(err.refusal));
          continue;
        }
      }
      throw err;
    }
  }
}

/**
 * Open the object, select the path's programs (essential, the optional ones
 * still wanted whose hook exists here, the extra ones), configure and load.
 * First with the build's minimized BTF (when it fits this kernel); if a
 * CO-RE relocation fails with it, once more with the kernel's own BTF.
 */
function openAndLoad<S extends AnySkeleton>(opts: LoadOptions<S>, path: AttachPath<S>, wanted: OptionalProgram<S>[], injected: Set<string>,
  leftOut: LeftOut<S>[], leaveOut: (s: OptionalProgram<S>, reason: string) => void, remember: (r: Refusal, log: string[]) => void): BpfObject<S> {
  for (const fullBtf of [false, true]) {
    const obj = openObject(opts.object, { fullBtf, path: opts.objectPath });
    try {
      const optional: ProgramName<S>[] = [];
      for (const s of wanted) {
        if (leftOut.some((l) => l.program === s.program)) continue;
        const hook = hookPresent(obj.program(s.program).section);
        if (hook.present) optional.push(s.program);
        else leaveOut(s, hook.missing ?? 'hook missing');
      }
      const selected = [...path.programs, ...optional, ...(path.loadOnly ?? []), ...(opts.alwaysLoad ?? []) as ProgramName<S>[]];
      obj.selectPrograms(selected);
      for (const [prog, target] of Object.entries(path.attachTargets ?? {}) as [ProgramName<S>, string][]) obj.program(prog).setAttachTarget(target);
      opts.configure?.(obj);
      const refusedHere = selected.find((p) => injected.has(p));
      if (refusedHere) {
        throw new ProgramRefused({ program: refusedHere, kind: hookKind(obj.program(refusedHere).section), errno: 1, stage: 'load', injected: true });
      }
      loadNaming(obj, remember);
      return obj;
    } catch (err) {
      obj.close();
      // Only a CO-RE relocation failure can be the minimized BTF's fault.
      const coreFailure = obj.btfCustomPath !== undefined && err instanceof RbtraceError && !(err instanceof ProgramRefused) && /CO-RE|relo/i.test(err.details ?? '');
      if (coreFailure && !fullBtf) {
        opts.log?.(`attach path ${path.name} failed with the minimized BTF, retrying with the kernel's: ${(err as Error).message}`);
        continue;
      }
      throw err;
    }
  }
  throw new Error('unreachable');
}

/** obj.load(), but a failure names the program the kernel refused (from libbpf's log), and remembers it when it lasts. */
function loadNaming<S extends AnySkeleton>(obj: BpfObject<S>, remember: (r: Refusal, log: string[]) => void): void {
  try {
    obj.load();
  } catch (err) {
    if (!(err instanceof RbtraceError)) throw err;
    const log = err.details?.split('\n') ?? [];
    const program = failedProgramInLog(log);
    if (!program || !obj.hasProgram(program as ProgramName<S>)) throw err;
    const refusal: Refusal = { program, kind: hookKind(obj.program(program as ProgramName<S>).section), errno: err.errno ?? 0, stage: 'load' };
    remember(refusal, log);
    throw new ProgramRefused(refusal, err.details);
  }
}

function errnoOf(err: unknown): number {
  return err instanceof RbtraceError && err.errno ? err.errno : 0;
}

/** Which path would load here: load and attach it, then let go (for doctor), and what it would run without. */
export function probePaths<S extends AnySkeleton>(object: S | string, paths: AttachPath<S>[], configure?: (obj: BpfObject<S>) => void): string {
  const loaded = loadWithPaths({ object, paths, configure, fresh: true });
  loaded.obj.close();
  const passed = loaded.skipped.map((s) => `${s.path} unavailable`).join(', ');
  const degraded = loaded.degraded().map((d) => `; ${d}`).join('');
  return `${loaded.path.name}${passed ? ` (${passed})` : ''}${degraded}`;
}

function openObject<S extends AnySkeleton>(object: S | string, opts: { fullBtf: boolean; path?: string }): BpfObject<S> {
  return (typeof object === 'string' ? BpfObject.open(object, opts) : BpfObject.open(object, opts)) as BpfObject<S>;
}

