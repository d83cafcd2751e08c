// What a tool is, and what it gets to work with. A tool (built in, or a
// user's own) is a ToolDefinition: its options, and a run() that loads its
// BPF object through ctx.load(), wires ring buffers and interval reports
// into ctx.session, and returns; the CLI then runs the session to its end.
import type { Command } from 'commander';
import type { ChalkInstance } from 'chalk';
import type { CommonOptions } from './options.js';
import type { Output } from './output/stdout.js';
import type { Session } from './session.js';
import type { Target } from './target.js';
import { loadWithPaths, type AttachPath, type Loaded } from './paths.js';
import type { BpfObject } from './object.js';
import { RingBuffer, lostEvents } from './ringbuf.js';

export interface Logger {
  /** Only with -v. */
  verbose(message: string): void;
  warn(message: string): void;
}

export interface LoadSpec {
  object: string;
  paths: AttachPath[];
  /** .rodata values (the tool's filters), by variable name. */
  rodata?: Record<string, unknown>;
  /** RODATA table generated from the object's BTF. */
  rodataSpec?: Record<string, { offset: number; size: number; kind: string }>;
  /** Anything else before load (resize maps, ...). */
  configure?: (obj: BpfObject) => void;
}

export interface ToolContext {
  tool: string;
  out: Output;
  color: ChalkInstance;
  log: Logger;
  target: Target;
  session: Session;
  opts: CommonOptions;
  /**
   * Open the tool's object, set its filters and the target's, load and attach
   * the first attach path that works, and have the session own it. Also
   * reports ring-buffer losses counted by the BPF side.
   */
  load(spec: LoadSpec): Loaded;
  /** A ring buffer of a loaded object, polled by the session. */
  ringBuffer(obj: BpfObject, mapName: string, onRecord: (record: DataView) => void): RingBuffer;
}

export interface ToolDefinition<O = Record<string, unknown>> {
  name: string;
  /** One line, for `rbtrace --help`. */
  summary: string;
  /** Extra help text (examples) shown after the options. */
  help?: string;
  /** false for commands that load nothing (doctor): no common options, no privilege check. */
  traces?: boolean;
  options?(cmd: Command): void;
  /**
   * For `rbtrace doctor`: the attach path this tool would use here (really
   * loading and attaching it), or throw saying why it cannot run.
   */
  probe?(): string;
  run(ctx: ToolContext, opts: O & CommonOptions): Promise<void> | void;
}

export function defineTool<O>(def: ToolDefinition<O>): ToolDefinition<O> {
  return def;
}

/** The ToolContext the CLI hands to a tool. */
export function createContext(base: Omit<ToolContext, 'load' | 'ringBuffer'>): ToolContext {
  const ctx: ToolContext = {
    ...base,
    load(spec) {
      const loaded = loadWithPaths({
        object: spec.object,
        paths: spec.paths,
        alwaysLoad: base.target.extraPrograms(),
        force: base.opts.attach,
        log: (line) => base.log.verbose(line),
        configure: (obj) => {
          if (spec.rodata || base.target.following || base.target.pid || base.target.cgroup) {
            if (!spec.rodataSpec) throw new Error(`${spec.object}: rodata given without its RODATA table`);
            obj.setRodata(spec.rodataSpec, { ...base.target.rodata(), ...spec.rodata });
          }
          spec.configure?.(obj);
        },
      });
      base.session.own(loaded.obj);
      base.target.attach(loaded.obj);
      watchLosses(ctx, loaded.obj);
      return loaded;
    },
    ringBuffer(obj, mapName, onRecord) {
      return base.session.addRingBuffer(new RingBuffer(obj.map(mapName), onRecord));
    },
  };
  return ctx;
}

/** Tell the user (stderr, and a JSON record) when the BPF side dropped events. */
function watchLosses(ctx: ToolContext, obj: BpfObject): void {
  let lostMap;
  try {
    lostMap = obj.map('rbtrace_lost');
  } catch {
    return; // an object without rbtrace.bpf.h
  }
  let reported = 0;
  const check = () => {
    const lost = lostEvents(lostMap);
    if (lost > reported) {
      ctx.log.warn(`lost ${lost - reported} events (ring buffer full; the total so far is ${lost})`);
      if (ctx.opts.json) ctx.out.record({ time: new Date().toISOString(), lost_events: lost });
      reported = lost;
    }
  };
  const timer = setInterval(check, 1000);
  timer.unref();
  ctx.session.own({ close: () => clearInterval(timer) });
  ctx.session.onFinish(check);
}
