// Options every tracing tool gets, defined once: -p, -- CMD, -i, -d, --json,
// -v, --no-color (and the hidden --attach used by tests).
import { Option, type Command } from 'commander';
import { UsageError } from './errors.js';
import { parsePid } from './process.js';
import { resolveCgroupDir, type CgroupDir } from './cgroup.js';

export interface CommonOptions {
  pid?: number;
  interval?: number;
  duration?: number;
  json: boolean;
  verbose: boolean;
  color: boolean;
  attach?: string;
  /** --cgroup DIR: only tasks in this cgroup v2 directory and below. */
  cgroup?: CgroupDir;
  /** argv after `--` */
  command: string[];
}

export function parseSeconds(flag: string) {
  return (text: string): number => {
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v) || v < 0) {
      throw new UsageError(`${flag} wants a number of seconds, got '${text}'`, `e.g. ${flag} 5`);
    }
    return v;
  };
}

export function parsePositiveInt(flag: string, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const v = Number(text);
    if (!/^\d+$/.test(text.trim()) || v < 1 || v > max) {
      throw new UsageError(`${flag} wants a whole number from 1 to ${max}, got '${text}'`);
    }
    return v;
  };
}

export function parseUint(flag: string, max = 0xffffffff) {
  return (text: string): number => {
    const v = Number(text);
    if (!/^\d+$/.test(text.trim()) || v > max) throw new UsageError(`${flag} wants a whole number, got '${text}'`);
    return v;
  };
}

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .usage('[options] [-- CMD ARGS...]')
    .option('-p, --pid <pid>', 'trace only this process', (v) => parsePid(v, '-p'))
    .option('--cgroup <dir>', 'trace only tasks in this cgroup v2 directory (and below it)', (v) => resolveCgroupDir(v))
    .option('-i, --interval <secs>', 'print a report every SECS seconds', parseSeconds('-i'))
    .option('-d, --duration <secs>', 'stop after SECS seconds (0: attach, then exit)', parseSeconds('-d'))
    .option('--json', 'NDJSON on stdout: one object per line')
    .option('-v, --verbose', 'say which attach path is used; full verifier log and stack traces on errors')
    .option('--no-color', 'no colour, even on a terminal (NO_COLOR does the same)')
    .addOption(new Option('--attach <path>', 'force an attach path (fentry, kprobe, tracepoint, ...)').hideHelp())
    .argument('[command...]', 'after --: a command to start and trace, with its descendants');
}

/**
 * Commander hands us operands whether or not they followed `--`; rbtrace
 * wants the command after `--` only, so `rbtrace execsnoop ls` is an error
 * rather than a surprise.
 */
export function commandAfterDashes(operands: string[], rawArgs: string[]): string[] {
  if (operands.length === 0) return [];
  if (!rawArgs.includes('--')) {
    throw new UsageError(`unexpected argument '${operands[0]}'`, `to trace a command, put it after --: rbtrace <tool> -- ${operands.join(' ')}`);
  }
  return operands;
}
