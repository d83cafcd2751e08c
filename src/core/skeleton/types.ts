// The shape of a generated skeleton (src/core/skeleton/gen.ts writes one per
// BPF object, from its BTF and ELF): what a BpfObject opened from it can be
// asked for by name. Program, map and .rodata names are TypeScript literal
// unions, so a name renamed or removed in the C is a type error where the
// TypeScript uses it (docs/SDK.md, "Typed skeletons").
import type { StructLayout } from '../bpf/layout.js';

export interface ProgramSpec {
  /** The ELF section, i.e. its SEC() string: 'fentry/tcp_v4_conn_request'. */
  readonly section: string;
  /** The part before the first '/': 'fentry', 'kprobe', 'tracepoint', 'iter', ... */
  readonly attach: string;
}

export interface MapSpec<K = any, V = any> {
  /** BPF_MAP_TYPE_* in lower case without the prefix: 'hash', 'percpu_array', 'ringbuf', ... */
  readonly type: string;
  readonly maxEntries?: number;
  readonly keySize?: number;
  readonly valueSize?: number;
  /** Layouts of the key and value, when BTF gives their types (a scalar or a struct). */
  readonly key?: StructLayout<K>;
  readonly value?: StructLayout<V>;
}

/** A map whose key and value types BTF gives: BpfObject.typedMap() reads it decoded. */
export interface TypedMapSpec<K, V> extends MapSpec<K, V> {
  readonly key: StructLayout<K>;
  readonly value: StructLayout<V>;
}

export interface RodataVar {
  readonly offset: number;
  readonly size: number;
  /** A field kind of src/core/bpf/layout.ts. */
  readonly kind: string;
}

/**
 * One BPF object's names and types. P, M: its program and map names; R: its
 * `const volatile` variables with their TypeScript types (64-bit ones take a
 * number or a bigint); T: per map with typed key and value, its TypedMapSpec
 * (so a field renamed in the C is a type error where the TypeScript reads it).
 */
export interface Skeleton<P extends string = string, M extends string = string, R extends object = Record<string, unknown>,
  T extends { [K in M]?: TypedMapSpec<any, any> } = any> {
  /** File name of the object (build/bpf/NAME.bpf.o), or a path. */
  readonly object: string;
  readonly programs: { readonly [K in P]: ProgramSpec };
  readonly maps: { readonly [K in M]: K extends keyof T ? T[K] : MapSpec };
  readonly rodata: { readonly [K in keyof R]: RodataVar };
}

/** Any skeleton: what untyped code (an object opened by path) gets. */
export type AnySkeleton = Skeleton<string, string, Record<string, unknown>, any>;

export type ProgramName<S> = S extends Skeleton<infer P, any, any> ? P : string;
export type MapName<S> = S extends Skeleton<any, infer M, any> ? M : string;
export type RodataOf<S> = S extends Skeleton<any, any, infer R> ? R : Record<string, unknown>;

/** The maps of S whose key and value types are known (BpfObject.typedMap takes these). */
export type TypedMapName<S> = S extends { readonly maps: infer MS }
  ? Extract<{ [K in keyof MS]: MS[K] extends TypedMapSpec<any, any> ? K : never }[keyof MS], string> : string;
export type MapKeyOf<S, N> = S extends { readonly maps: infer MS } ? N extends keyof MS ? MS[N] extends TypedMapSpec<infer K, any> ? K : never : never : never;
export type MapValueOf<S, N> = S extends { readonly maps: infer MS } ? N extends keyof MS ? MS[N] extends TypedMapSpec<any, infer V> ? V : never : never : never;
