// Options every tool gets, defined once. Global options (-v, --json,
// --no-color) are taken before the tool name as after it; the tracing
// options (-p, -- CMD, -i, -d, and the hidden --attach used by tests) only
// after it, and only those a tool honours (ToolDefinition.honours): any other
// is refused with a usage error saying why, never silently ignored.
import { Option, type Command } from 'commander';
import { UsageError } from './errors.js';
import { integerParser, pidParser, secondsParser, MAX_TIMER_SECONDS } from './parsers.js';
import { parseUser } from './linux/user.js';
import { addReportOptions, type ReportOptions } from './report/options.js';
import { resolveCgroupDir, type CgroupDir } from './linux/cgroup.js';
import { checkOutputPath, REPORT_FILE } from './output/file.js';
import { STDOUT_OPERAND } from './output/sink.js';

export interface CommonOptions extends ReportOptions {
  pid?: number;
  interval?: number;
  duration?: number;
  json: boolean;
  verbose: boolean;
  color: boolean;
  attach?: string;
  /** --user: run -- CMD as this user (name or uid). */
  user?: string;
  /** --cgroup DIR: only tasks in this cgroup v2 directory and below. */
  cgroup?: CgroupDir;
  /** -o FILE: the report (text or --json) goes there; '-' is stdout (src/core/output/sink.ts). */
  output?: string;
  /** argv after `--` */
  command: string[];
}

/** The tracing options a tool may or may not honour. */
export type CommonOption = 'pid' | 'command' | 'interval' | 'duration';
export const COMMON_OPTIONS: readonly CommonOption[] = ['pid', 'command', 'interval', 'duration'];

/** Shortest -i: reports more often than this are noise (and -i 0 was a report per millisecond). */
export const MIN_INTERVAL_SECONDS = 0.1;

const FLAGS: Record<Exclude<CommonOption, 'command'>, string> = {
  pid: '-p, --pid <pid>',
  interval: '-i, --interval <secs>',
  duration: '-d, --duration <secs>',
};

/** Kept for the SDK: seconds from min (default 0) to the longest timer. */
export function parseSeconds(flag: string, min = 0) {
  return secondsParser(flag, { min });
}

/** Kept for the SDK: a whole number from 1 to max. */
export function parsePositiveInt(flag: string, max = Number.MAX_SAFE_INTEGER) {
  return integerParser(flag, { min: 1, max });
}

/** Kept for the SDK: a whole number from 0 to max. */
export function parseUint(flag: string, max = 0xffffffff) {
  return integerParser(flag, { min: 0, max });
}

/**
 * Options about output and diagnostics, which every tool honours. Added to
 * the program (before the tool name) and to each tool (after it).
 */
export function addGlobalOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'NDJSON, one object per line, where the report goes (stdout; stderr with -- CMD, unless -o)')
    .option('-v, --verbose', 'say which attach path is used; libbpf\'s log (the verifier\'s) and stack traces on errors')
    .option('--no-color', 'no colour, even on a terminal (NO_COLOR does the same)');
}

/**
 * The tracing options, for a tool that honours `honours`; the others are
 * hidden options that refuse their value, with `whyNot` as the reason.
 */
export function addCommonOptions(
  cmd: Command,
  honours: readonly CommonOption[] = COMMON_OPTIONS,
  whyNot: Partial<Record<CommonOption, string>> = {},
): Command {
  const parsers = {
    pid: pidParser('-p'),
    interval: secondsParser('-i', { min: MIN_INTERVAL_SECONDS, max: MAX_TIMER_SECONDS }),
    duration: secondsParser('-d', { min: 0, max: MAX_TIMER_SECONDS }),
  };
  const help = {
    pid: 'trace only this process',
    interval: `print a report every SECS seconds (${MIN_INTERVAL_SECONDS} to ${MAX_TIMER_SECONDS})`,
    duration: `stop after SECS seconds (0 to ${MAX_TIMER_SECONDS}; 0: attach, then exit)`,
  };
  cmd.usage(honours.includes('command') ? '[options] [-- CMD ARGS...]' : '[options]');
  for (const name of ['pid', 'interval', 'duration'] as const) {
    if (honours.includes(name)) {
      cmd.addOption(new Option(FLAGS[name], help[name]).argParser(parsers[name]));
    } else {
      cmd.addOption(new Option(FLAGS[name]).hideHelp().argParser(() => refuse(cmd.name(), name, whyNot[name])));
    }
  }
  cmd.addOption(new Option('-o, --output <file>', 'write the report (text or --json) to FILE, or stdout with -o - (default: stdout; with -- CMD stderr, the command owning stdout)')
    .argParser((t) => (t === STDOUT_OPERAND ? t : checkOutputPath(t, REPORT_FILE))));
  cmd.option('--cgroup <dir>', 'trace only tasks in this cgroup v2 directory (and below it)', (v) => resolveCgroupDir(v));
  if (honours.includes('command')) {
    // Long form only: -u is taken by execsnoop (bcc's uid filter) and strlat (microseconds).
    cmd.option('--user <user>', 'run CMD (after --) as this user, name or uid: its uid, gid and groups', parseUser);
  }
  return addReportOptions(cmd
    .addOption(new Option('--attach <path>', 'force an attach path (fentry, kprobe, tracepoint, ...)').hideHelp())
    .argument('[command...]', honours.includes('command') ? 'after --: a command to start and trace, with its descendants' : '(none)'));
}

/** Refuse, with --json, an option given on the command line that only shapes the text output. */
export function refuseTextOnly(cmd: Command, textOnly: readonly string[] = [], json: boolean): void {
  if (!json) return;
  for (const name of textOnly) {
    if (cmd.getOptionValueSource(name) !== 'cli') continue;
    // --chart and --no-chart set the same value: name both.
    const flag = cmd.options.filter((o) => o.attributeName() === name).map((o) => o.long ?? o.short).join('/');
    throw new UsageError(`${flag} shapes the text output only: it does not apply with --json`, `drop ${flag} or --json`);
  }
}

const SHORT: Record<CommonOption, string> = { pid: '-p', interval: '-i', duration: '-d', command: '-- CMD' };

/** The usage error for a common option a tool does not honour. */
export function refuse(tool: string, option: CommonOption, why?: string): never {
  throw new UsageError(`${SHORT[option]} does not apply to ${tool}${why ? `: ${why}` : ''}`, `drop ${SHORT[option]}`);
}

/**
 * The command to trace from the operands commander collected. Commander
 * hands us operands whether or not they followed `--`; only those after it are
 * the command, so `rbtrace execsnoop ls` and `rbtrace syscount echo -- hi` are
 * errors rather than surprises, and so is a `--` with nothing after it.
 * `args` are the tool's arguments as given (after the tool's name), `options`
 * the tool's options (to tell a `--` that is an option's value, as in `-n --`).
 */
export function commandAfterDashes(operands: string[], args: string[], options: readonly Option[] = []): string[] {
  const command = argsAfterDashes(args, options);
  const before = operands.slice(0, operands.length - (command?.length ?? 0));
  if (before.length) {
    const hint = command ? 'put options before -- and the command with all its arguments after it'
      : `to trace a command, put it after --: -- ${before.join(' ')}`;
    throw new UsageError(`unexpected argument '${before[0]}'${command ? ' before --' : ''}`, hint);
  }
  if (command && command.length === 0) throw new UsageError('-- wants a command after it', 'e.g. -- make -j2');
  return command ?? [];
}

/**
 * What follows the `--` that ends the options, as commander's parser finds
 * it: a `--` right after an option that takes a value is that value; in a
 * group of short flags (-xd) the first that takes a value takes the rest of
 * the group, or the next argument. undefined: no `--`.
 */
export function argsAfterDashes(args: string[], options: readonly Option[]): string[] | undefined {
  const find = (flag: string) => options.find((o) => o.short === flag || o.long === flag);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return args.slice(i + 1);
    if (a.length < 2 || a[0] !== '-' || a.startsWith('--')) {
      if (find(a)?.required) i++;
      continue;
    }
    for (let k = 1; k < a.length; k++) {
      const o = find(`-${a[k]}`);
      if (!o) break;
      if (o.required) {
        if (k === a.length - 1) i++;
        break;
      }
    }
  }
  return undefined;
}
