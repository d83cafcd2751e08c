// rbtrace's command line: one subcommand per tool (src/tools/registry.ts).
// Errors are one line on stderr; usage errors exit 2, runtime errors 1.
import { packageVersion } from './core/package.js';
import { Command, CommanderError } from 'commander';
import { TOOLS } from './tools/registry.js';
import { addCommonOptions, addGlobalOptions, commandAfterDashes, refuse, refuseTextOnly, type CommonOptions } from './core/options.js';
import { escapeForTerminal } from './core/output/format.js';
import { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, RbtraceError, errorLine } from './core/errors.js';
import { checkBtf, checkPrivileges } from './core/linux/system.js';
import { createColor } from './core/output/color.js';
import { Output } from './core/output/stdout.js';
import { reportSink } from './core/output/sink.js';
import { Target } from './core/target.js';
import { Session } from './core/session.js';
import { createContext, type Logger, type ToolDefinition } from './core/tool.js';
import { echoLibbpfLog } from './core/bpf/object.js';
import { RunReport } from './core/report/run.js';
import { suggestOptions } from './core/suggest.js';
import { SDK_COMMANDS, addSdkCommands, runFileOperand } from './sdkcli/commands.js';
import { loadToolFile } from './sdkcli/load.js';

/**
 * Which subcommand is being run, so that only its module is imported (global
 * options take no value, so the first operand is the tool; `help TOOL` wants
 * TOOL's options too).
 */
function requestedTool(argv: string[]): string | undefined {
  const operands: string[] = [];
  for (const a of argv) {
    if (a === '--') break;
    if (!a.startsWith('-')) operands.push(a);
  }
  return operands[0] === 'help' ? operands[1] ?? 'help' : operands[0];
}

/** Diagnostics on stderr, one line each, escaped whole: they quote paths and names from the traced system. */
function makeLogger(prefix: string, verbose: boolean): Logger {
  return {
    verbose: (m) => {
      if (verbose) process.stderr.write(`${prefix}: ${escapeForTerminal(m)}\n`);
    },
    warn: (m) => process.stderr.write(`${prefix}: ${escapeForTerminal(m)}\n`),
  };
}

let verboseErrors = false;

async function runTool(def: ToolDefinition<any>, opts: CommonOptions & Record<string, unknown>): Promise<number> {
  const prefix = `rbtrace ${def.name}`;
  verboseErrors = opts.verbose;
  echoLibbpfLog(Boolean(opts.verbose) && process.env.RBTRACE_LIBBPF_LOG === '1');
  // Where the report goes (text or --json): -o FILE, -o - (stdout), stderr with -- CMD, else stdout.
  const sink = reportSink(opts.output, opts.command.length > 0);
  const out = new Output(Boolean(opts.json), sink.stream, sink.name);
  const color = createColor(sink.stream, { noColor: opts.color === false });
  const log = makeLogger(prefix, Boolean(opts.verbose));
  if (def.traces === false) {
    const target = Target.all();
    const session = new Session({ out, target, errorPrefix: prefix });
    await def.run(createContext({ tool: def.name, out, color, log, target, session, opts }), opts);
    await out.flush();
    return EXIT_OK;
  }
  // Assertion names and the baseline are checked before anything is loaded.
  const report = RunReport.prepare({ tool: def.name, opts, command: opts.command, pid: opts.pid }, def.figures);
  checkPrivileges();
  checkBtf();
  const target = Target.fromOptions({ pid: opts.pid, command: opts.command, user: opts.user, cgroup: opts.cgroup });
  const session = new Session({
    out, target, errorPrefix: prefix, verbose: opts.verbose,
    durationSec: opts.duration, intervalSec: opts.interval,
  });
  try {
    await target.command?.ready;
    await def.run(createContext({ tool: def.name, out, color, log, target, session, opts }, report?.collector), opts);
  } catch (err) {
    session.close();
    target.command?.kill('SIGKILL');
    throw err;
  }
  const status = await session.run();
  return report ? report.finish(status, prefix, Boolean(opts.verbose)) : status;
}

export interface ToolCommand {
  cmd: Command;
  def: ToolDefinition<any>;
}

/**
 * rbtrace's commander program: the global options, and a subcommand per tool;
 * the tools for which `wanted` is true get their options (their modules are
 * imported). The fuzz test builds it with every tool to learn their flags.
 */
export async function buildProgram(wanted: (name: string) => boolean, runDef?: ToolDefinition<any>): Promise<{ program: Command; tools: Map<string, ToolCommand> }> {
  const program = new Command('rbtrace')
    .description('BPF tracing tools for Linux: exec, syscalls, TCP queues, Ruby and allocator latency')
    .version(packageVersion(), '-V, --version')
    .usage('[global options] <tool> [options] [-- command args...]')
    .addHelpText('after', '\nYour own tools: rbtrace new NAME, rbtrace build NAME.bpf.c, rbtrace run NAME.ts (docs/SDK.md, man rbtrace-run).')
    // Options before the tool's name are rbtrace's (the global ones), after it the tool's.
    .enablePositionalOptions()
    .exitOverride()
    .addHelpText('after', `\nGlobal options (before or after the tool's name): --json, -v/--verbose, --no-color.\nReports go to stdout; with -- CMD to stderr (the command owns stdout): -o FILE, or -o - for stdout.\nRun 'rbtrace <tool> --help' for a tool's options, 'man rbtrace' for the manual.\nExit status: 0 success or Ctrl-C, 1 runtime error, 2 usage error; with -- CMD, CMD's status;\n3 a failed --assert or a regression over --baseline (when all else succeeded).`);
  addGlobalOptions(program);
  const tools = new Map<string, ToolCommand>();
  for (const entry of TOOLS) {
    const cmd = program.command(entry.name).description(entry.summary);
    if (!wanted(entry.name)) continue;
    const def = await entry.load();
    addGlobalOptions(cmd);
    if (def.traces !== false) addCommonOptions(cmd, def.honours, def.whyNot);
    def.options?.(cmd);
    if (def.help) cmd.addHelpText('after', '\n' + def.help);
    tools.set(entry.name, { cmd, def });
  }
  // new, build, run, completion: the SDK's commands (src/sdkcli). `run FILE`
  // is then a tool like the others, its definition taken from FILE.
  const run = addSdkCommands(program, runDef, async () => (await buildProgram(() => true)).program);
  if (runDef) tools.set('run', { cmd: run, def: runDef });
  return { program, tools };
}

/**
 * One line for a commander error: its "(Did you mean ...?)" line joined to
 * the first, and what the user typed escaped (a value may hold a newline or
 * an escape sequence).
 */
export function commanderErrorLine(prefix: string, text: string): string {
  let msg = text.replace(/^error: /, '').replace(/\n+$/, '');
  let suggestion = '';
  const at = msg.lastIndexOf('\n(Did you mean ');
  if (at >= 0) {
    suggestion = msg.slice(at + 1).replace(/^\((.*)\)$/s, '$1').replace(/^Did/, 'did');
    msg = msg.slice(0, at);
  }
  const tool = prefix === 'rbtrace' ? '' : ` ${prefix.replace(/^rbtrace /, '')}`;
  return `${prefix}: ${escapeForTerminal(msg)}${suggestion ? `; ${escapeForTerminal(suggestion)}` : ''} (see rbtrace${tool} --help)`;
}

export async function main(argv: string[]): Promise<number> {
  let currentPrefix = 'rbtrace';
  let exitCode: number = EXIT_OK;
  const wanted = requestedTool(argv);
  let runDef: ToolDefinition<any> | undefined;
  const runFile = wanted === 'run' ? runFileOperand(argv) : undefined;
  if (runFile) {
    try {
      runDef = await loadToolFile(runFile);
    } catch (err) {
      process.stderr.write(errorLine('rbtrace run', err) + '\n');
      return err instanceof RbtraceError ? err.exitCode : EXIT_RUNTIME;
    }
  }
  const { program, tools } = await buildProgram((name) => name === wanted, runDef);
  // Subcommands made before this inherit nothing, so set the output on each.
  for (const c of [program, ...program.commands]) {
    suggestOptions(c);
    c.configureOutput({ outputError: (str, write) => write(commanderErrorLine(currentPrefix, str) + '\n') });
  }
  for (const [name, { cmd, def }] of tools) {
    currentPrefix = `rbtrace ${def.name}`;
    cmd.action(async (...args: unknown[]) => {
      // [command...] is the last argument (run has FILE before it).
      const operands = args.length > 2 ? (args[args.length - 3] as string[]) : [];
      const global = program.opts() as Partial<CommonOptions>;
      const opts = cmd.opts() as CommonOptions & Record<string, unknown>;
      // A global option counts wherever it was given: before or after the tool's name.
      opts.json = Boolean(opts.json || global.json);
      opts.verbose = Boolean(opts.verbose || global.verbose);
      opts.color = opts.color !== false && global.color !== false;
      const toolArgs = argv.slice(argv.indexOf(name) + 1);
      const command = def.traces === false ? [] : commandAfterDashes(operands ?? [], toolArgs, cmd.options);
      if (command.length && def.honours && !def.honours.includes('command')) refuse(def.name, 'command', def.whyNot?.command);
      opts.command = command;
      refuseTextOnly(cmd, def.textOnly, opts.json);
      exitCode = await runTool(def, opts);
    });
  }

  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT_USAGE;
  }
  if (wanted === undefined && !argv.some((a) => ['-h', '--help', '-V', '--version'].includes(a))) {
    process.stderr.write(`rbtrace: which tool? (rbtrace --help lists them)\n`);
    return EXIT_USAGE;
  }
  program.hook('preAction', (_, action) => {
    // A loaded `run` FILE's errors are the tool's (rbtrace NAME), set above.
    if ((SDK_COMMANDS as readonly string[]).includes(action.name()) && !tools.has(action.name())) currentPrefix = `rbtrace ${action.name()}`;
    // -v before or after an SDK command's name: its errors' whole log too (a tool's runTool sets it).
    if (action.opts().verbose || program.opts().verbose) verboseErrors = true;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
      // 'commander.help' is `rbtrace help` (0), or the help shown for a missing tool (1: a usage error).
      if (err.code === 'commander.help' && err.exitCode === 0) return EXIT_OK;
      return EXIT_USAGE;
    }
    // An error is one line. libbpf's log (the verifier's, a failed CO-RE
    // relocation) is often long and only for whoever debugs the program:
    // -v prints it after the line; without -v the line says it is there.
    const log = err instanceof RbtraceError && err.details?.trim() ? err.details.trimEnd().split('\n').map(escapeForTerminal) : [];
    process.stderr.write(errorLine(currentPrefix, err) + (log.length && !verboseErrors ? ' [-v shows the whole log]' : '') + '\n');
    if (log.length && verboseErrors) process.stderr.write(`${log.join('\n')}\n`);
    if (verboseErrors && err instanceof Error && err.stack && !(err instanceof RbtraceError)) process.stderr.write(err.stack + '\n');
    return err instanceof RbtraceError ? err.exitCode : EXIT_RUNTIME;
  }
  return exitCode;
}
