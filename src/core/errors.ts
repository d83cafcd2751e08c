// Errors a user sees: one line, `rbtrace <tool>: what went wrong (how to fix it)`.
// Anything that is not an RbtraceError is a bug and shows its stack with --verbose.
import { errnoName } from './linux/names.js';
import { escapeForTerminal } from './output/format.js';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export class RbtraceError extends Error {
  readonly hint?: string;
  readonly exitCode: number;
  /** Longer diagnostics (libbpf's log, the verifier's): shown with --verbose only; the error line says they exist. */
  readonly details?: string;
  /** The kernel's (or libbpf's) answer, a positive errno, where one caused this. */
  readonly errno?: number;
  /** The cause may pass by itself (a process not started yet): a daemon tries again later. */
  readonly transient: boolean;

  constructor(message: string, opts: { hint?: string; exitCode?: number; details?: string; cause?: unknown; errno?: number; transient?: boolean } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'RbtraceError';
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT_RUNTIME;
    this.details = opts.details;
    this.errno = opts.errno;
    this.transient = opts.transient ?? false;
  }
}

/** Bad flags, bad values: exit status 2. */
export class UsageError extends RbtraceError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: EXIT_USAGE });
    this.name = 'UsageError';
  }
}

/**
 * The one line an error prints as. Escaped whole (messages quote paths,
 * names and values from the user or the traced system), which also keeps it
 * one line: a newline in a value prints as \\n.
 */
export function errorLine(prefix: string, err: unknown): string {
  if (err instanceof RbtraceError) return `${prefix}: ${escapeForTerminal(err.message)}${err.hint ? ` (${escapeForTerminal(err.hint)})` : ''}`;
  const msg = err instanceof Error ? err.message : String(err);
  return `${prefix}: internal error: ${escapeForTerminal(msg)} (rerun with --verbose for the stack trace)`;
}

/** Turn a negative libbpf return value or an errno into a readable reason. */
export function errnoText(err: number): string {
  const code = Math.abs(err);
  const why: Record<number, string> = {
    1: 'operation not permitted', 2: 'no such file or entry', 3: 'no such process', 7: 'argument list too long',
    9: 'bad file descriptor', 12: 'out of memory', 13: 'permission denied', 14: 'bad address', 16: 'busy',
    17: 'exists', 19: 'no such device', 22: 'invalid argument', 28: 'no space', 38: 'not implemented',
    95: 'not supported', 524: 'not supported by this kernel',
  };
  const libbpf: Record<number, string> = { 4001: 'LIBBPF_ERRNO__FORMAT: bad ELF object', 4003: 'LIBBPF_ERRNO__LOAD: load failed' };
  if (libbpf[code]) return libbpf[code];
  const name = errnoName(code);
  return why[code] ? `${name}: ${why[code]}` : name;
}
