// The SDK's subcommands: new, build, run, completion. They are not tools
// (src/tools/registry.ts): new, build and completion load nothing; run takes
// its ToolDefinition from a user's file and is then run by the CLI exactly as
// a built-in tool is (src/cli.ts: common options, attach paths, session).
import type { Command } from 'commander';
import { relative } from 'node:path';
import { UsageError } from '../core/errors.js';
import { addCommonOptions, addGlobalOptions } from '../core/options.js';
import type { ToolDefinition } from '../core/tool.js';
import { writeStarter } from './new.js';
import { buildTool } from './build.js';
import { bashCompletion, zshCompletion } from './completion.js';

export const SDK_COMMANDS = ['new', 'build', 'run', 'completion'] as const;

const RUN_HELP = `
FILE is a tool written with the SDK (import ... from 'rbtrace'), TypeScript or
JavaScript, that default-exports defineTool({...}); its own options follow it.
Examples:
  rbtrace new demo && rbtrace build demo.bpf.c
  sudo rbtrace run demo.ts -- ls -l
  sudo rbtrace run demo.ts -p 1234 -i 1 --json`;

/**
 * Add the SDK's subcommands. `runDef` is the tool of `rbtrace run FILE`
 * when FILE was loaded: its options (common and its own) are added to `run`.
 * `fullProgram` builds the program with every tool's options (completion).
 */
export function addSdkCommands(program: Command, runDef: ToolDefinition<any> | undefined, fullProgram: () => Promise<Command>): Command {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  program.command('new').description('write a starter tool: NAME.bpf.c and NAME.ts (a syscall counter, commented as a tutorial)')
    .argument('<name>', 'the tool name (lower-case letters, digits, _)')
    .option('--force', 'overwrite existing files')
    .option('--others-dir', 'write even though the directory belongs to another user (who could swap its files meanwhile)')
    .action((name: string, opts: { force?: boolean; othersDir?: boolean }) => {
      const files = writeStarter(name, '.', Boolean(opts.force), Boolean(opts.othersDir));
      say(`rbtrace new: wrote ${files.map((f) => relative('.', f)).join(', ')}`);
      say(`next: rbtrace build ${name}.bpf.c && sudo rbtrace run ${name}.ts -- ls`);
    });
  program.command('build').description('compile NAME.bpf.c (clang, bpftool) into NAME.bpf.o and its typed bindings NAME.skel.ts')
    .argument('<file>', 'the BPF C source, NAME.bpf.c')
    .option('-v, --verbose', 'print the compiler command')
    .option('--others-dir', 'build even though the directory belongs to another user (who could swap its files meanwhile)')
    .action((file: string, opts: { verbose?: boolean; othersDir?: boolean }) => {
      const verbose = Boolean(opts.verbose || program.opts().verbose);
      const built = buildTool(file, { log: verbose ? (l) => say(`rbtrace build: ${l}`) : undefined, othersDir: Boolean(opts.othersDir) });
      say(`rbtrace build: wrote ${relative('.', built.object)}, ${relative('.', built.bindings)}`);
    });
  program.command('completion').description('print shell completion for bash or zsh (source it from your shell\'s rc file)')
    .argument('<shell>', 'bash or zsh')
    .action(async (shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`no completion for '${shell}'`, 'rbtrace completion bash, or rbtrace completion zsh');
      const full = await fullProgram();
      process.stdout.write(shell === 'bash' ? bashCompletion(full) : zshCompletion(full));
    });
  const run = program.command('run').description('run a tool file written with the SDK, with every common option (-p, -- CMD, -i, -d, --json)')
    .argument('<file>', 'the tool: NAME.ts (or .js)');
  if (runDef) {
    run.description(`${runDef.name}: ${runDef.summary} (a tool run from FILE)`);
    addGlobalOptions(run);
    if (runDef.traces !== false) addCommonOptions(run, runDef.honours, runDef.whyNot);
    runDef.options?.(run);
    if (runDef.help) run.addHelpText('after', '\n' + runDef.help);
    run.usage(`FILE [options]${runDef.traces !== false && (!runDef.honours || runDef.honours.includes('command')) ? ' [-- CMD ARGS...]' : ''}`);
  } else {
    // Reached only when FILE is not right after `run` (else src/cli.ts sets the tool's action).
    run.usage('FILE [FILE\'s options] [-- CMD ARGS...]').allowUnknownOption().allowExcessArguments()
      .action(() => { throw new UsageError('rbtrace run wants the tool file first', 'rbtrace run FILE [options] [-- CMD ARGS...]'); });
  }
  run.addHelpText('after', RUN_HELP);
  return run;
}

/** The file operand of `rbtrace run FILE ...`: the word after `run`. */
export function runFileOperand(argv: string[]): string | undefined {
  const at = argv.indexOf('run');
  const file = at >= 0 ? argv[at + 1] : undefined;
  return file && !file.startsWith('-') ? file : undefined;
}
