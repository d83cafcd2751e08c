// The Rubies the Ruby tools are tested on: Debian 12's ruby 3.1 on the
// host, and Debian 13's ruby 3.3 unpacked into a root of its own
// (scripts/debian13-ruby.sh) run in its own mount namespace
// (scripts/debian13-ruby-run.sh), as a container image would be. rbtrace is
// pointed at the root's libruby with --lib: the ruby in the namespace runs
// that very file (uprobes attach by inode).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, isCI } from './helpers.js';

export interface RubyUnderTest {
  label: string;
  /** The command running ruby with `args`. */
  argv(args: string[]): string[];
  /** rbtrace options naming its libruby (none: found from the command). */
  rbtraceArgs: string[];
  /** Absent: usable; else why not (a failure under CI). */
  missing?: string;
}

export const HOST_RUBY: RubyUnderTest = { label: 'ruby 3.1 (Debian 12, host)', argv: (args) => ['ruby', ...args], rbtraceArgs: [] };

const RUBY33_ROOT = join(process.env.RBTRACE_RUBY33_CACHE ?? '/var/cache/rbtrace/debian13-ruby', 'root');
const RUN = join(ROOT, 'scripts/debian13-ruby-run.sh');
const LIB = join(RUBY33_ROOT, 'usr/lib', execFileSync('sh', ['-c', 'gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu'], { encoding: 'utf8' }).trim(), 'libruby-3.3.so.3.3');

export const ROOT_RUBY: RubyUnderTest = {
  label: 'ruby 3.3 (Debian 13 root, own mount namespace)',
  argv: (args) => [RUN, RUBY33_ROOT, ...args],
  rbtraceArgs: ['--lib', LIB],
  ...(existsSync(LIB) ? {} : { missing: `no ${LIB}: run scripts/debian13-ruby.sh (scripts/setup.sh does)` }),
};

export const RUBIES = [HOST_RUBY, ROOT_RUBY];

/** node:test's skip option for a Ruby: a reason outside CI; under CI a missing Ruby fails (see requireRuby). */
export function skipUnless(ruby: RubyUnderTest): string | false {
  return ruby.missing && !isCI ? ruby.missing : false;
}

/** Under CI a missing Ruby is a failure, never a skip. */
export function requireRuby(ruby: RubyUnderTest): void {
  if (ruby.missing) throw new Error(ruby.missing);
}

/** RUBY_VERSION of a Ruby under test, run as the tests run it. */
export function rubyVersion(ruby: RubyUnderTest): string {
  const [cmd, ...args] = ruby.argv(['--disable-gems', '-e', 'print RUBY_VERSION']);
  return execFileSync(cmd, args, { encoding: 'utf8' });
}
