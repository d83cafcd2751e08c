// "did you mean": the known names nearest to a misspelled one, for tool
// names, --assert rows and options. Options are suggested by spelling
// (--foldd: --folded) and, for a short flag a tool lacks (bcc's -T, -U...),
// by initial (-s: --size or --stack), so a bcc habit gets a pointer, not a
// bare "unknown option".
import type { Command, Option } from 'commander';

/** Edit distance (insert, delete, substitute), or `limit` when it is at least that. */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return Math.min(prev[b.length], limit);
}

/** The known name nearest to a misspelled one (edit distance at most 2). */
export function closest(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = editDistance(name, n, bestD);
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best;
}

/** Short initials suggest at most this many long options. */
const MAX_BY_INITIAL = 3;

/** How an option is written in a suggestion: its long form, else its short one. */
function spelled(o: Option): string {
  return o.long ?? o.short ?? o.flags;
}

/** The options `flag` (not one of them) may have meant, best first; none when nothing is near. */
export function similarOptions(flag: string, options: readonly Option[]): string[] {
  const longs = options.filter((o) => o.long).map((o) => o.long!);
  if (flag.startsWith('--')) {
    const near = closest(flag.toLowerCase(), longs);
    if (near) return [near];
    const prefixed = longs.filter((l) => l.startsWith(flag));
    return prefixed.length === 1 ? prefixed : [];
  }
  if (!/^-[^-]$/.test(flag)) return [];
  const letter = flag[1];
  // -t for -T: a case slip.
  const otherCase = options.find((o) => o.short && o.short !== flag && o.short.toLowerCase() === flag.toLowerCase());
  if (otherCase) return [spelled(otherCase)];
  // -s: the long options that begin with s (--size, --stack).
  return options.filter((o) => o.long && o.long[2]?.toLowerCase() === letter.toLowerCase()).map(spelled).slice(0, MAX_BY_INITIAL);
}

/** Commander's "(Did you mean ...?)" tail, which src/cli.ts joins to the error's line. */
export function didYouMean(similar: readonly string[]): string {
  if (!similar.length) return '';
  return similar.length === 1 ? `\n(Did you mean ${similar[0]}?)` : `\n(Did you mean one of ${similar.join(', ')}?)`;
}

/**
 * Make `cmd`'s unknown-option error suggest by spelling and by initial,
 * among its visible options (commander suggests for long flags only).
 */
export function suggestOptions(cmd: Command): Command {
  const c = cmd as unknown as { unknownOption(flag: string): void; error(msg: string, o: { code: string }): never };
  c.unknownOption = (flag: string) => {
    const visible = cmd.createHelp().visibleOptions(cmd);
    c.error(`error: unknown option '${flag}'${didYouMean(similarOptions(flag, visible))}`, { code: 'commander.unknownOption' });
  };
  return cmd;
}
