// rbtrace's command line: one subcommand per tool (src/tools/registry.ts).
// Errors are one line on stderr; usage errors exit 2, runtime errors 1.
import { packageVersion } from './core/package.js';
import { Command, CommanderError } from 'commander';
import { TOOLS } from './tools/registry.js';
import { addCommonOptions, commandAfterDashes, type CommonOptions } from './core/options.js';
import { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, RbtraceError, errorLine } from './core/errors.js';
import { checkBtf, checkPrivileges } from './core/system.js';
import { createColor } from './core/output/color.js';
import { Output } from './core/output/stdout.js';
import { Target } from './core/target.js';
import { Session } from './core/session.js';
import { createContext, type Logger, type ToolDefinition } from './core/tool.js';
import { echoLibbpfLog } from './core/object.js';

/** Which subcommand is being run, so that only its module is imported. */
function requestedTool(argv: string[]): string | undefined {
  for (const a of argv) {
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

function makeLogger(prefix: string, verbose: boolean): Logger {
  return {
    verbose: (m) => {
      if (verbose) process.stderr.write(`${prefix}: ${m}\n`);
    },
    warn: (m) => process.stderr.write(`${prefix}: ${m}\n`),
  };
}

let verboseErrors = false;

async function runTool(def: ToolDefinition<any>, opts: CommonOptions & Record<string, unknown>): Promise<number> {
  const prefix = `rbtrace ${def.name}`;
  verboseErrors = opts.verbose;
  echoLibbpfLog(Boolean(opts.verbose) && process.env.RBTRACE_LIBBPF_LOG === '1');
  const out = new Output(Boolean(opts.json));
  const color = createColor(process.stdout, { noColor: opts.color === false });
  const log = makeLogger(prefix, Boolean(opts.verbose));
  if (def.traces === false) {
    const target = Target.all();
    const session = new Session({ out, target, errorPrefix: prefix });
    await def.run(createContext({ tool: def.name, out, color, log, target, session, opts }), opts);
    return EXIT_OK;
  }
  checkPrivileges();
  checkBtf();
  const target = Target.fromOptions({ pid: opts.pid, command: opts.command, cgroup: opts.cgroup });
  const session = new Session({
    out, target, errorPrefix: prefix, verbose: opts.verbose,
    durationSec: opts.duration, intervalSec: opts.interval,
  });
  try {
    await def.run(createContext({ tool: def.name, out, color, log, target, session, opts }), opts);
  } catch (err) {
    session.close();
    target.command?.kill('SIGKILL');
    throw err;
  }
  return session.run();
}

export async function main(argv: string[]): Promise<number> {
  let currentPrefix = 'rbtrace';
  let exitCode: number = EXIT_OK;
  const program = new Command('rbtrace')
    .description('BPF tracing tools for Linux: exec, syscalls, TCP queues, Ruby and allocator latency')
    .version(packageVersion(), '-V, --version')
    .usage('<tool> [options] [-- command args...]')
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => {
        const msg = str.trim().replace(/^error: /, '');
        const tool = currentPrefix === 'rbtrace' ? '' : ` ${currentPrefix.replace(/^rbtrace /, '')}`;
        write(`${currentPrefix}: ${msg} (see rbtrace${tool} --help)\n`);
      },
    })
    .addHelpText('after', `\nRun 'rbtrace <tool> --help' for a tool's options, 'man rbtrace' for the manual.\nExit status: 0 success or Ctrl-C, 1 runtime error, 2 usage error; with -- CMD, CMD's status.`);

  const wanted = requestedTool(argv);
  for (const entry of TOOLS) {
    const cmd = program.command(entry.name).description(entry.summary);
    if (entry.name !== wanted) continue;
    const def = await entry.load();
    currentPrefix = `rbtrace ${def.name}`;
    if (def.traces !== false) addCommonOptions(cmd);
    def.options?.(cmd);
    if (def.help) cmd.addHelpText('after', '\n' + def.help);
    cmd.action(async (...args: unknown[]) => {
      const command = args.length > 2 ? (args[0] as string[]) : [];
      const opts = cmd.opts() as CommonOptions & Record<string, unknown>;
      opts.json = Boolean(opts.json);
      opts.verbose = Boolean(opts.verbose);
      opts.command = def.traces === false ? [] : commandAfterDashes(command ?? [], argv);
      exitCode = await runTool(def, opts);
    });
  }

  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    process.stderr.write(errorLine(currentPrefix, err) + '\n');
    if (err instanceof RbtraceError && err.details) {
      const lines = err.details.trimEnd().split('\n');
      const shown = verboseErrors ? lines : lines.slice(-20);
      if (shown.length) process.stderr.write(`${verboseErrors ? '' : '... last lines of the log (-v shows all):\n'}${shown.join('\n')}\n`);
    }
    if (verboseErrors && err instanceof Error && err.stack && !(err instanceof RbtraceError)) process.stderr.write(err.stack + '\n');
    return err instanceof RbtraceError ? err.exitCode : EXIT_RUNTIME;
  }
  return exitCode;
}

export function isVerbose(): boolean {
  return verboseErrors;
}
