// The shape of a generated skeleton (src/core/skeleton/gen.ts writes one per
// BPF object, from its BTF and ELF): what a BpfObject opened from it can be
// asked for by name. Program, map and .rodata names are TypeScript literal
// unions, so a name renamed or removed in the C is a type error where the
// TypeScript uses it (docs/SDK.md, "Typed skeletons").
import type { StructLayout } from '../layout.js';

export interface ProgramSpec {
  /** The ELF section, i.e. its SEC() string: 'fentry/tcp_v4_conn_request'. */
  readonly section: string;
  /** The part before the first '/': 'fentry', 'kprobe', 'tracepoint', 'iter', ... */
  readonly attach: string;
}

export interface MapSpec {
  /** BPF_MAP_TYPE_* in lower case without the prefix: 'hash', 'percpu_array', 'ringbuf', ... */
  readonly type: string;
  readonly maxEntries?: number;
  readonly keySize?: number;
  readonly valueSize?: number;
  /** Layouts of the key and value, when BTF gives their types (a scalar or a struct). */
  readonly key?: StructLayout<any>;
  readonly value?: StructLayout<any>;
}

export interface RodataVar {
  readonly offset: number;
  readonly size: number;
  /** A field kind of src/core/layout.ts. */
  readonly kind: string;
}

/**
 * One BPF object's names and types. P, M: its program and map names; R: its
 * `const volatile` variables with their TypeScript types (64-bit ones take a
 * number or a bigint).
 */
export interface Skeleton<P extends string = string, M extends string = string, R extends object = Record<string, unknown>> {
  /** File name of the object (build/bpf/NAME.bpf.o), or a path. */
  readonly object: string;
  readonly programs: { readonly [K in P]: ProgramSpec };
  readonly maps: { readonly [K in M]: MapSpec };
  readonly rodata: { readonly [K in keyof R]: RodataVar };
}

/** Any skeleton: what untyped code (an object opened by path) gets. */
export type AnySkeleton = Skeleton<string, string, Record<string, unknown>>;

export type ProgramName<S> = S extends Skeleton<infer P, any, any> ? P : string;
export type MapName<S> = S extends Skeleton<any, infer M, any> ? M : string;
export type RodataOf<S> = S extends Skeleton<any, any, infer R> ? R : Record<string, unknown>;
