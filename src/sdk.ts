// rbtrace's public package entry: `import { defineTool, ... } from 'rbtrace'`.
// What a tool author needs, and nothing of the CLI's own wiring. Which parts
// are stable (kept across minor versions) and which may still change is
// docs/SDK.md's "Stability" table; SDK_VERSION moves with it.
export * from './core/index.js';
export type { FigureSchema } from './core/report/figures.js';
export {
  secondsParser, integerParser, pidParser, uidParser, errnoParser, portParser, portListParser,
  MAX_TIMER_SECONDS, PID_MAX_LIMIT, type Parser,
} from './core/parsers.js';
export { resolveFunction, findRubyBinary, loadUserProbes, probeUserProbes, type ResolvedFunction, type UserProbeSpec } from './core/bpf/uprobes.js';
export { PerProcessUsdt, hasBpfCookie, type PerProcessOptions } from './core/bpf/usdt-pids.js';
export { hasTaskStorage } from './core/bpf/features.js';

/**
 * The SDK's API version (semver). The stable surface of docs/SDK.md changes
 * incompatibly only with its major part (its minor part while it is 0.x);
 * a test keeps it equal to the package's version.
 */
export const SDK_VERSION = '0.1.0';
