// Where a tool's report goes, text and NDJSON alike, decided here once for
// every tool (the CLI builds the Output on it; colour, terminal width and
// -i reports follow the stream chosen):
// - `-o FILE`: the file; `-o -`: stdout, whatever else is given;
// - `-- CMD` without -o: stderr. The command owns stdout (`rbtrace syscount
//   -- ls > o.txt` must leave o.txt as ls wrote it), as strace -c puts its
//   summary on stderr. A script that wants the report alone gives -o FILE
//   (pure NDJSON: the banner and warnings stay on stderr) or -o -;
// - otherwise (-p, --cgroup, system-wide): stdout.
import { openOutputStream } from './file.js';

/** `-o -`: the report on stdout, explicitly. */
export const STDOUT_OPERAND = '-';

export interface ReportSink {
  stream: NodeJS.WriteStream;
  /** How error messages name it: 'stdout', 'stderr' or the file's name. */
  name: string;
}

export function reportSink(output: string | undefined, hasCommand: boolean): ReportSink {
  if (output === STDOUT_OPERAND) return { stream: process.stdout, name: 'stdout' };
  if (output !== undefined) return { stream: openOutputStream(output) as unknown as NodeJS.WriteStream, name: output };
  return hasCommand ? { stream: process.stderr, name: 'stderr' } : { stream: process.stdout, name: 'stdout' };
}
