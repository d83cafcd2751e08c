// The folded-stack line (Brendan Gregg's stackcollapse format, read by
// flamegraph.pl, speedscope, inferno): "comm;outer;...;inner COUNT".
import type { Frame, Stack } from './symbolizer.js';

/** Marker frame for a stack probably cut short (missing frame pointers): where its unknown callers would be. */
export const TRUNCATED_FRAME = '[truncated]';

/**
 * A frame as one folded field: the separators (';', and the space-count at
 * the end of a line) and control characters cannot appear in it. Kernel
 * frames get "_[k]", as stackcollapse-perf.pl --kernel marks them (flame
 * graph palettes colour them apart).
 */
export function frameLabel(f: Frame): string {
  const name = f.name.replace(/[;\r\n\t\x00-\x1f\x7f]/g, '_').replace(/ /g, '_');
  return f.kernel ? `${name}_[k]` : name;
}

/** The frames of a stack, outermost first, with `root` (e.g. the comm) first; TRUNCATED_FRAME after it when cut short. */
export function foldedFrames(root: string, stack: Stack): string[] {
  const out = [root.replace(/[;\s\x00-\x1f\x7f]/g, '_') || '?'];
  if (stack.truncated) out.push(TRUNCATED_FRAME);
  for (let i = stack.frames.length - 1; i >= 0; i--) out.push(frameLabel(stack.frames[i]));
  return out;
}

/** One folded line (without the newline). */
export function foldedLine(root: string, stack: Stack, count: number): string {
  return `${foldedFrames(root, stack).join(';')} ${count}`;
}

/** --json's frame: addresses as hex strings (64-bit kernel addresses do not fit a JSON number). */
export function frameJson(f: Frame): Record<string, unknown> {
  return {
    name: f.name,
    ...(f.symbol ? { symbol: f.symbol } : {}),
    ...(f.module ? { module: f.module } : {}),
    addr: `0x${f.addr.toString(16)}`,
    ...(f.offset !== undefined ? { offset: f.offset } : {}),
    kernel: f.kernel,
  };
}
