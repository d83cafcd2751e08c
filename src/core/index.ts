// rbtrace's SDK: what every built-in tool uses, and what a custom tool is
// written with. See docs/SDK.md for a walk-through.
export { defineTool, type ToolDefinition, type ToolContext, type LoadSpec, type Logger } from './tool.js';
export { BpfObject, BpfProgram, BpfLink, bpfObjectDir, type UprobeSpec, type UsdtSpec, type OpenOptions } from './object.js';
export type { Skeleton, AnySkeleton, ProgramSpec, MapSpec, RodataVar, ProgramName, MapName, RodataOf,
  TypedMapSpec, TypedMapName, MapKeyOf, MapValueOf } from './skeleton/types.js';
export { BpfMap, TypedMap, possibleCpus, sumValues, readPerCpuCounter } from './maps.js';
export { RingBuffer, lostEvents } from './ringbuf.js';
export { readIterator, readIteratorIn, records } from './iter.js';
export { listNetns, inNetns, type Netns } from './netns.js';
export { cgroupLayout, resolveCgroupDir, cgroupOfPid, containerOf, type CgroupDir } from './cgroup.js';
export { StructLayout, scalarLayout, decodeCString, type FieldSpec } from './layout.js';
export { loadWithPaths, probePaths, forcedPath, type AttachPath, type OptionalProgram, type LeftOut, type Loaded } from './paths.js';
export { Target } from './target.js';
export { Session, type StopReason } from './session.js';
export { addCommonOptions, parseSeconds, parsePositiveInt, parseUint, type CommonOptions } from './options.js';
export { RbtraceError, UsageError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from './errors.js';
export * from './process.js';
export * from './gate.js';
export * from './system.js';
export * from './names.js';
export * from './output/index.js';
