// rbtrace's SDK: what every built-in tool uses, and what a custom tool is
// written with. See docs/SDK.md for a walk-through.
export { defineTool, type ToolDefinition, type ToolContext, type LoadSpec, type Logger } from './tool.js';
export { BpfObject, BpfProgram, BpfLink, bpfObjectDir, type UprobeSpec, type UsdtSpec, type OpenOptions } from './bpf/object.js';
export type { Skeleton, AnySkeleton, ProgramSpec, MapSpec, RodataVar, ProgramName, MapName, RodataOf,
  TypedMapSpec, TypedMapName, MapKeyOf, MapValueOf } from './skeleton/types.js';
export { BpfMap, TypedMap, possibleCpus, sumValues, readPerCpuCounter } from './bpf/maps.js';
export { RingBuffer, lostEvents } from './bpf/ringbuf.js';
export { readIterator, readIteratorIn, records } from './bpf/iter.js';
export { listNetns, inNetns, type Netns } from './linux/netns.js';
export { cgroupLayout, resolveCgroupDir, cgroupOfPid, containerOf, type CgroupDir } from './linux/cgroup.js';
export { StructLayout, scalarLayout, decodeCString, type FieldSpec } from './bpf/layout.js';
export { loadWithPaths, probePaths, forcedPath, type AttachPath, type OptionalProgram, type LeftOut, type Loaded } from './bpf/paths.js';
export { Target } from './target.js';
export { Session, type StopReason } from './session.js';
export { addCommonOptions, parseSeconds, parsePositiveInt, parseUint, type CommonOptions } from './options.js';
export { RbtraceError, UsageError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from './errors.js';
export * from './linux/process.js';
export * from './linux/gate.js';
export * from './linux/system.js';
export * from './linux/names.js';
export * from './output/index.js';
