// What a tool is, and what it gets to work with. A tool (built in, or a
// user's own) is a ToolDefinition: its options, and a run() that loads its
// BPF object through ctx.load(), wires ring buffers and interval reports
// into ctx.session, and returns; the CLI then runs the session to its end.
import { plural } from './output/format.js';
import type { Command } from 'commander';
import type { ChalkInstance } from 'chalk';
import type { CommonOption, CommonOptions } from './options.js';
import type { Output } from './output/stdout.js';
import type { Session } from './session.js';
import type { Target } from './target.js';
import { loadWithPaths, type AttachPath, type Loaded } from './bpf/paths.js';
import type { BpfObject } from './bpf/object.js';
import type { AnySkeleton, MapName, RodataOf, RodataVar } from './skeleton/types.js';
import type { MapName as CommonMapName } from '../generated/rbtrace.js';

/** rbtrace.bpf.h's count of ring-buffer records lost. */
const LOST_MAP: CommonMapName = 'rbtrace_lost';
import { RingBuffer, lostEvents } from './bpf/ringbuf.js';
import type { FigureCollector, FigureSchema } from './report/figures.js';

export interface Logger {
  /** Only with -v. */
  verbose(message: string): void;
  warn(message: string): void;
}

/**
 * What ctx.load() opens. With `skeleton` (SKELETON of the object's generated
 * src/generated/NAME.ts), every program, map and .rodata name the tool
 * gives, here and on the loaded object, is checked by tsc against the C.
 */
export interface LoadSpec<S extends AnySkeleton = AnySkeleton> {
  skeleton?: S;
  /** Untyped form: build/bpf/<object>.bpf.o by name (with rodataSpec, the RODATA table). Prefer `skeleton`. */
  object?: string;
  /** The object file, when not where the skeleton's name says (a user's tool). */
  objectPath?: string;
  paths: AttachPath<S>[];
  /** .rodata values (the tool's filters), by variable name. */
  rodata?: Partial<RodataOf<S>>;
  /** Untyped form only: the RODATA table generated from the object's BTF. */
  rodataSpec?: Record<string, RodataVar>;
  /** Anything else before load (resize maps, ...). */
  configure?: (obj: BpfObject<S>) => void;
}

export interface ToolContext {
  tool: string;
  out: Output;
  color: ChalkInstance;
  log: Logger;
  target: Target;
  session: Session;
  opts: CommonOptions;
  /** The "Tracing ..." line: on stderr for every tool (never mixed with the report), not with --json. */
  banner(text: string): void;
  /**
   * Open the tool's object, set its filters and the target's, load and attach
   * the first attach path that works, and have the session own it. Also
   * reports ring-buffer losses counted by the BPF side.
   */
  load<S extends AnySkeleton>(spec: LoadSpec<S>): Loaded<S>;
  /** A ring buffer of a loaded object, polled by the session. */
  ringBuffer<S extends AnySkeleton>(obj: BpfObject<S>, mapName: MapName<S>, onRecord: (record: DataView) => void): RingBuffer;
  /**
   * Hand over figures for --save/--assert/--baseline, whatever the view: what
   * happened since the previous call (a delta), shaped as ToolDefinition.figures
   * describes. Merged over the run in src/core/report; a no-op when unused.
   */
  report(delta: object): void;
}

export interface ToolDefinition<O = Record<string, unknown>> {
  name: string;
  /** One line, for `rbtrace --help`. */
  summary: string;
  /** Extra help text (examples) shown after the options. */
  help?: string;
  /** false for commands that load nothing (doctor): no common options, no privilege check. */
  traces?: boolean;
  /**
   * The common tracing options (-p, -- CMD, -i, -d) this tool honours;
   * default: all of them. Any other is refused with a usage error, never
   * accepted and ignored. The global options (--json, -v, --no-color) are
   * every tool's.
   */
  honours?: readonly CommonOption[];
  /** Why a common option is not honoured, for its usage error. */
  whyNot?: Partial<Record<CommonOption, string>>;
  /**
   * The tool's options (by attribute name, e.g. 'printUid' for --print-uid)
   * that only shape the text output: given with --json, they are refused.
   */
  textOnly?: readonly string[];
  options?(cmd: Command): void;
  /**
   * For `rbtrace doctor`: the attach path this tool would use here (really
   * loading and attaching it), or throw saying why it cannot run.
   */
  probe?(): string;
  /**
   * For doctor's MIN KERNEL column: the oldest kernel (and why) of the best
   * attach path, and of the fallback the tool can still run on.
   */
  kernels?: { best: string; fallback?: string };
  /**
   * Every attach path the tool may load, whatever its options (for tests
   * that refuse each optional program in turn, test/e2e/degrade.test.ts).
   */
  paths?: readonly AttachPath<any>[];
  run(ctx: ToolContext, opts: O & CommonOptions): Promise<void> | void;
  /** The shape of the figures the tool passes to ctx.report() with these options (docs/SDK.md). */
  figures?(opts: O & CommonOptions): FigureSchema;
}

export function defineTool<O>(def: ToolDefinition<O>): ToolDefinition<O> {
  return def;
}

/** The ToolContext the CLI hands to a tool. */
export function createContext(base: Omit<ToolContext, 'load' | 'ringBuffer' | 'report' | 'banner'>, figures?: FigureCollector): ToolContext {
  const ctx: ToolContext = {
    ...base,
    banner: (text) => {
      if (!base.opts.json) process.stderr.write(text + '\n');
    },
    report: (delta) => figures?.add(delta),
    load<S extends AnySkeleton>(spec: LoadSpec<S>): Loaded<S> {
      const loaded = loadForTarget(spec, base.target, { force: base.opts.attach, log: (line) => base.log.verbose(line) });
      base.session.own(loaded.obj);
      watchLosses(ctx, loaded.obj);
      return loaded;
    },
    ringBuffer(obj, mapName, onRecord) {
      return base.session.addRingBuffer(new RingBuffer(obj.map(mapName), onRecord));
    },
  };
  return ctx;
}

/**
 * Load a tool's object for a target (its pid, command or cgroup filters in
 * .rodata, its follow programs, its cgroup and traced-pid maps filled): what
 * a tool's ctx.load() and the exporter's sources both do. The caller owns
 * the object.
 */
export function loadForTarget<S extends AnySkeleton>(spec: LoadSpec<S>, target: Target,
  opts: { force?: string; log?: (line: string) => void } = {}): Loaded<S> {
  const object = spec.skeleton ?? spec.object;
  if (!object) throw new Error('load: give the skeleton of the object to load');
  const loaded = loadWithPaths<S>({
    object,
    objectPath: spec.objectPath,
    paths: spec.paths,
    alwaysLoad: target.extraPrograms(),
    force: opts.force,
    log: opts.log,
    configure: (obj) => {
      if (spec.rodata || target.following || target.pid || target.cgroup) {
        const rodataSpec = spec.rodataSpec ?? spec.skeleton?.rodata;
        if (!rodataSpec) throw new Error(`${spec.object}: rodata given without its RODATA table`);
        obj.setRodata(rodataSpec, { ...target.rodata(), ...spec.rodata });
      }
      spec.configure?.(obj);
    },
  });
  try {
    target.attach(loaded.obj);
  } catch (err) {
    loaded.obj.close();
    throw err;
  }
  return loaded;
}

/**
 * Tell the user (stderr, and a JSON record) when events went missing: the
 * BPF side found a ring buffer or tracking map full, or the kernel skipped
 * runs of a program because another BPF program, or a map syscall, held that
 * CPU (classic tracepoints and kprobes share one such guard per CPU).
 */
function watchLosses(ctx: ToolContext, obj: BpfObject): void {
  let lostMap: ReturnType<BpfObject['map']> | undefined;
  try {
    lostMap = obj.map(LOST_MAP);
  } catch {
    lostMap = undefined; // an object without rbtrace.bpf.h
  }
  let reportedLost = 0;
  let reportedMissed = 0;
  const check = () => {
    const lost = lostMap ? lostEvents(lostMap) : 0;
    if (lost > reportedLost) {
      ctx.log.warn(`lost ${plural(lost - reportedLost, 'event')} (a ring buffer or a tracking map was full; the total so far is ${lost})`);
      if (ctx.opts.json) ctx.out.record({ time: new Date().toISOString(), lost_events: lost });
      reportedLost = lost;
    }
    const byProgram = obj.skippedRuns();
    const missed = Object.values(byProgram).reduce((a, b) => a + b, 0);
    if (missed > reportedMissed) {
      const names = Object.keys(byProgram).join(', ');
      ctx.log.warn(`the kernel skipped ${plural(missed - reportedMissed, 'run')} of ${names} (another BPF program, or a read of a BPF map, held that CPU when the event fired): figures may be short by as many events; the total so far is ${missed}`);
      if (ctx.opts.json) ctx.out.record({ time: new Date().toISOString(), missed_runs: missed, programs: byProgram });
      reportedMissed = missed;
    }
  };
  const timer = setInterval(check, 1000);
  timer.unref();
  ctx.session.own({ close: () => clearInterval(timer) });
  ctx.session.onFinish(check);
}
