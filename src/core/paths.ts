// Attach paths: a tool lists the ways its probes can hook the kernel, best
// first (fentry, then kprobe, then tracepoints, ...). The SDK really tries
// each one in turn (open, load, attach) and keeps the first that works, as
// libbpf-tools do with fentry_can_attach/kprobe_exists, but without guessing:
// the kernel's answer to the real program is the probe.
//
// RBTRACE_ATTACH=<path> (or the hidden --attach option) forces one path and
// disables fallback, so tests can exercise each path and notice a broken one.
import { BpfObject, type BpfLink } from './object.js';
import { RbtraceError, UsageError } from './errors.js';
import { ensureTracefs } from './system.js';
import { hookPresent, releaseKernelBtf } from './kernel-targets.js';
import type { AnySkeleton, ProgramName } from './skeleton/types.js';

/** S: the object's generated skeleton, which checks every program name. */
export interface AttachPath<S extends AnySkeleton = AnySkeleton> {
  /** Shown with -v and in doctor: 'fentry', 'kprobe', 'tracepoint', 'raw_tp', 'uprobe', ... */
  name: string;
  /** Programs of the object that this path loads and attaches (by their SEC()). */
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
   * Programs loaded and attached only where the kernel has their hook (judged
   * from their SEC() by kernel-targets.ts, e.g. a tracepoint newer than some
   * kernels): a missing one is left out (said with -v) instead of failing the
   * path. Their links follow `programs`' in Loaded.links; Loaded.optional
   * says which loaded.
   */
  optional?: ProgramName<S>[];
  /**
   * Programs loaded with the path but attached by the tool once it is loaded
   * (BpfProgram.attachIterMap: an iterator over a map of the object), not
   * as their SEC() says. Not in Loaded.links.
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
}

export interface Loaded<S extends AnySkeleton = AnySkeleton> {
  obj: BpfObject<S>;
  path: AttachPath<S>;
  links: BpfLink[];
  /** Why earlier paths were passed over. */
  skipped: { path: string; reason: string }[];
  /** The path's optional programs that were loaded (absent when it has none). */
  optional?: ProgramName<S>[];
  /** Its optional programs left out, with why. */
  leftOut?: { program: ProgramName<S>; reason: string }[];
}

export function forcedPath(explicit?: string): string | undefined {
  return explicit || process.env.RBTRACE_ATTACH || undefined;
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
  for (const path of candidates) {
    // First with the build's minimized BTF (when it fits this kernel); if a
    // CO-RE relocation fails with it, once more with the kernel's own BTF.
    for (const fullBtf of [false, true]) {
      let obj: BpfObject<S> | undefined;
      try {
        obj = openObject(opts.object, { fullBtf, path: opts.objectPath });
        const optional: ProgramName<S>[] = [];
        const leftOut: { program: ProgramName<S>; reason: string }[] = [];
        for (const name of path.optional ?? []) {
          const hook = hookPresent(obj.program(name).section);
          if (hook.present) optional.push(name);
          else leftOut.push({ program: name, reason: hook.missing ?? 'hook missing' });
        }
        obj.selectPrograms([...path.programs, ...optional, ...(path.loadOnly ?? []), ...(opts.alwaysLoad ?? []) as ProgramName<S>[]]);
        for (const [prog, target] of Object.entries(path.attachTargets ?? {}) as [ProgramName<S>, string][]) obj.program(prog).setAttachTarget(target);
        opts.configure?.(obj);
        obj.load();
        const links = path.attach ? path.attach(obj) : [...path.programs, ...optional].map((name) => {
          const prog = obj!.program(name);
          if (/^(tracepoint|tp)\//.test(prog.section)) {
            if (ensureTracefs() === 'mounted') opts.log?.('mounted tracefs (tracepoint programs read event ids from it)');
          }
          return prog.attach();
        });
        opts.log?.(`attach path: ${path.name}${path.note ? ` (${path.note})` : ''}`);
        for (const l of leftOut) opts.log?.(`optional program ${l.program} left out: ${l.reason}`);
        opts.log?.(`CO-RE against ${obj.btfCustomPath ? `the build's minimized BTF (${obj.btfCustomPath})` : 'the kernel\'s BTF'}`);
        releaseKernelBtf(); // hookPresent()'s; not needed again, and tens of MB
        return { obj, path, links, skipped, ...(path.optional ? { optional, leftOut } : {}) };
      } catch (err) {
        // Only a CO-RE relocation failure can be the minimized BTF's fault.
        const coreFailure = obj?.btfCustomPath !== undefined && err instanceof RbtraceError && /CO-RE|relo/i.test(err.details ?? '');
        obj?.close();
        lastError = err;
        if (coreFailure && !fullBtf) {
          opts.log?.(`attach path ${path.name} failed with the minimized BTF, retrying with the kernel's: ${(err as Error).message}`);
          continue;
        }
        const reason = err instanceof Error ? err.message : String(err);
        skipped.push({ path: path.name, reason });
        opts.log?.(`attach path ${path.name} unavailable: ${reason}`);
        break;
      }
    }
  }
  if (candidates.length === 1 && lastError instanceof RbtraceError) {
    const e = lastError;
    throw new RbtraceError(`${e.message}${forced ? ` (attach path '${forced}' forced)` : ''}`,
      { hint: e.hint ?? (forced ? 'rbtrace doctor shows the attach paths this kernel allows; without --attach the first that works is used' : undefined), details: e.details, exitCode: e.exitCode });
  }
  const summary = skipped.map((s) => `${s.path}: ${s.reason}`).join('; ');
  throw new RbtraceError(`no attach path works on this kernel (${summary})`,
    { hint: 'run rbtrace doctor to see what this kernel offers', details: lastError instanceof RbtraceError ? lastError.details : undefined });
}

/** Which path would load here: load and attach it, then let go (for doctor). */
export function probePaths<S extends AnySkeleton>(object: S | string, paths: AttachPath<S>[], configure?: (obj: BpfObject<S>) => void): string {
  const loaded = loadWithPaths({ object, paths, configure });
  loaded.obj.close();
  const passed = loaded.skipped.map((s) => `${s.path} unavailable`).join(', ');
  const without = loaded.leftOut?.length ? ` without ${loaded.leftOut.map((l) => l.program).join(', ')}` : '';
  return passed ? `${loaded.path.name}${without} (${passed})` : `${loaded.path.name}${without}`;
}

function openObject<S extends AnySkeleton>(object: S | string, opts: { fullBtf: boolean; path?: string }): BpfObject<S> {
  return (typeof object === 'string' ? BpfObject.open(object, opts) : BpfObject.open(object, opts)) as BpfObject<S>;
}
