// Stacks: capture (BPF side: src/bpf/include/rbtrace_stacks.bpf.h), reading
// (StackMap) and symbolization (Symbolizer). See README.md here.
export { StackMap, STACK_MAP, STACK_ERRORS_MAP, STACK_NONE, STACK_LOST, missingStackFrame, stackErrorsNote } from './stackmap.js';
export { Symbolizer, type Frame, type Stack, type SymbolizerOptions } from './symbolizer.js';
export { KernelSymbols, type KernelSymbol } from './kallsyms.js';
export { SymbolTable, symbolTableFor, readBuildId, clearSymbolTables, DEBUG_DIRS, type SymbolHit } from './symtab.js';
export { parseMaps, readRegions, findRegion, type Region } from './maps.js';
export { foldedLine, foldedFrames, frameJson, frameLabel, TRUNCATED_FRAME } from './folded.js';
