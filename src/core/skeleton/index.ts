// What a generated skeleton module imports (src/generated/*.ts here; a
// user's tool imports the same names from 'rbtrace').
export { StructLayout, scalarLayout } from '../bpf/layout.js';
export type { Skeleton, AnySkeleton, ProgramSpec, MapSpec, RodataVar, ProgramName, MapName, RodataOf,
  TypedMapSpec, TypedMapName, MapKeyOf, MapValueOf } from './types.js';
