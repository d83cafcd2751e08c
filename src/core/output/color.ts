// Colour policy for every tool, in one place: colour only on a terminal, never
// when the user asked for none (NO_COLOR, https://no-color.org, or --no-color).
// A dedicated Chalk instance per stream keeps chalk's global auto-detection
// (which looks at stdout only) from colouring a piped stdout or stderr.
import { Chalk, type ChalkInstance } from 'chalk';

export type { ChalkInstance };

export interface ColorOptions {
  /** --no-color on the command line. */
  noColor?: boolean;
  /** Environment to consult (tests inject one); defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Chalk colour level (0 none, 1 basic, 2 256, 3 truecolor) for `stream`. */
export function colorLevel(
  stream: { isTTY?: boolean; getColorDepth?: (env?: object) => number },
  opts: ColorOptions = {},
): 0 | 1 | 2 | 3 {
  const env = opts.env ?? process.env;
  if (opts.noColor) return 0;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (!stream.isTTY) return 0;
  // tty.WriteStream knows the terminal's depth from TERM/COLORTERM.
  const depth = typeof stream.getColorDepth === 'function' ? stream.getColorDepth(env) : 4;
  if (depth >= 24) return 3;
  if (depth >= 8) return 2;
  if (depth >= 4) return 1;
  return 0; // depth 1: a dumb terminal
}

/** A Chalk instance that colours only when colorLevel() allows it. */
export function createColor(
  stream: NodeJS.WriteStream | { isTTY?: boolean },
  opts: ColorOptions = {},
): ChalkInstance {
  return new Chalk({ level: colorLevel(stream, opts) });
}
