// The program that holds `-- CMD` before its exec (gate.ts): it says "ready"
// on the gate's socket, waits for "go", then execs the command in place
// (same pid). The BPF side counts nothing of it but that exec
// (rbtrace.bpf.h, PENDING), so it must make exactly one execve, and the
// command must get exactly the argv and environment rbtrace was given.
//
// perl (perl-base is Essential on Debian and Ubuntu) when it is there: it
// gets the environment on the socket, not in its own (so PERL5OPT,
// PERL5LIB, PERLIO, LANG... in the user's environment change nothing in the
// gate: it starts with none), and hands it to a raw execve(2) as the very
// list of strings rbtrace got, in order (environBlock: as bytes, so not
// even Node's UTF-8 decoding changes it). Not perl's exec: that goes through
// %ENV and execvp(3), and glibc's execvp re-runs a file the kernel refuses
// with ENOEXEC through /bin/sh (a second execve, counted as the command's).
// The environment goes on the socket rather than in perl's argv because a
// process's argv is world-readable (/proc/PID/cmdline, ps) and its
// environment is not.
//
// bash -p otherwise (no perl, or an architecture without an execve number
// here), which cannot be exact: its `exec` always exports SHLVL (a missing
// one arrives as SHLVL=0: sudo's env_reset, systemd, cron start rbtrace
// without one; adjust_shell_level does it even after `unset SHLVL`, and
// only `exec -c` or a forked subshell avoid it), it passes the environment
// in its hash table's order, not the one it got, and it changes PWD and `_`
// (undone below).
import { existsSync, readFileSync } from 'node:fs';
import { archInfo } from '../bpf/arch.js';
import { syscallNumber } from './names.js';

export interface Launcher {
  /** The gate's argv (its argv[0] is the file to run). */
  argv: string[];
  /** The gate's own environment (the command's may travel in `go`). */
  env: NodeJS.ProcessEnv;
  /** What release() writes on the gate's socket. */
  go: Buffer;
}

const PERL = '/usr/bin/perl';

/**
 * ARGV: execve's number, the socket's fd, the file, the command's argv.
 * The socket: "r" out; in, up to EOF (release() ends it): "go LENGTH\n"
 * and LENGTH bytes of environment, each string NUL-terminated. Anything
 * else (a short message from a dying rbtrace) is exit 126, as the bash
 * gate's failed read. (The match variables live in that one statement.)
 * Signals: perl ignores SIGFPE at start (PERL_FPU_INIT), and an ignored
 * signal stays ignored across exec; Node gave the gate default
 * dispositions, so every IGNORE here is perl's: undone.
 * A failed execve: one line, and the status bash's exec gives (127 for
 * ENOENT: the file, or its #! interpreter, is missing; else 126). No `use`,
 * no %!: no module is loaded.
 */
const PERL_GATE = String.raw`
my ($nr, $fd, $path, @argv) = @ARGV;
open my $g, '+<&=', $fd or exit 126;
syswrite $g, 'r' or exit 126;
my ($m, $n) = ('');
1 while $n = sysread $g, $m, 65536, length $m;
defined $n and $m =~ /\Ago (\d+)\n/ and length $m == $+[0] + $1 or exit 126;
my @env = substr($m, $+[0]) =~ /([^\0]*)\0/g;
close $g;
$SIG{$_} = 'DEFAULT' for grep { ($SIG{$_} // '') eq 'IGNORE' } keys %SIG;
my ($av, $ev) = (pack('p*', @argv, undef), pack('p*', @env, undef));
syscall $nr, $path, $av, $ev;
my ($errno, $error) = ($! + 0, "$!");
$error = "bad interpreter (#! line): $error" if $errno == 2 && -e $path;
(my $name = $path) =~ s/[^ -~]/?/g;
print STDERR "rbtrace: cannot run $name: $error\n";
exit($errno == 2 ? 127 : 126);
`;

/** The perl gate, or undefined where it cannot run. */
export function perlLauncher(path: string, argv: string[], gateFd: number, env: NodeJS.ProcessEnv): Launcher | undefined {
  const arch = archInfo();
  const nr = arch && syscallNumber('execve', arch.syscallTable);
  if (nr === undefined || !existsSync(PERL)) return undefined;
  const block = environBlock(env);
  // -f: no sitecustomize.pl; `--`: the rest is @ARGV.
  return {
    argv: [PERL, '-f', '-e', PERL_GATE, '--', String(nr), String(gateFd), path, ...argv],
    env: {},
    go: Buffer.concat([Buffer.from(`go ${block.length}\n`), block]),
  };
}

/**
 * The command's environment, each string NUL-terminated. Node decodes its
 * environment as UTF-8 (a byte that is not becomes U+FFFD) and orders
 * process.env's keys as a JS object does (integer-like names first): when
 * `env` is exactly what Node made of this process's environment
 * (/proc/self/environ, not changed since), that is what is passed on, as
 * bytes; else `env` as spawn() would pass it, NAME=VALUE in its order.
 */
export function environBlock(env: NodeJS.ProcessEnv, environ = '/proc/self/environ'): Buffer {
  const entries = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
  let raw: Buffer | undefined;
  try {
    raw = readFileSync(environ);
  } catch {
    // no /proc
  }
  if (raw && raw.length > 0 && raw[raw.length - 1] === 0 && sameEnvironment(raw, entries)) return raw;
  return Buffer.from(entries.map(([k, v]) => `${k}=${v}\0`).join(''));
}

/** Does `raw` decode to exactly these NAME=VALUE pairs (no duplicates, none without '=')? */
function sameEnvironment(raw: Buffer, entries: [string, string][]): boolean {
  const decoded = new Map<string, string>();
  let count = 0;
  for (let start = 0; start < raw.length; count++) {
    const end = raw.indexOf(0, start);
    const text = raw.toString('utf8', start, end);
    start = end + 1;
    const eq = text.indexOf('=', 1);
    if (eq < 0) return false;
    decoded.set(text.slice(0, eq), text.slice(eq + 1));
  }
  return decoded.size === count && count === entries.length && entries.every(([k, v]) => decoded.get(k) === v);
}

/** POSIX single quotes: safe for any string in a shell script. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The bash gate: the command's environment is bash's own (with SHLVL's caveat above). */
export function bashLauncher(path: string, argv: string[], gateFd: number, env: NodeJS.ProcessEnv): Launcher {
  // bash adds PWD to the environment when it is missing (and fixes one
  // that is not the cwd), and drops `_` once it has run a command: undo
  // both. `-a` gives the command argv[0] exactly as the user wrote it.
  const unset = env.PWD === undefined ? 'unset PWD; ' : '';
  const keep = (['PWD', '_'] as const).filter((v) => env[v] !== undefined).map((v) => `${v}=${shellQuote(env[v]!)} `).join('');
  const script = `printf r >&${gateFd} && read -r _ <&${gateFd} || exit 126; ${unset}${keep}exec ${gateFd}<&- -a "$1" "$0" "\${@:2}"`;
  return { argv: ['/bin/bash', '-p', '-c', script, path, ...argv], env, go: Buffer.from('go\n') };
}
