// Errors a user sees: one line, `rbtrace <tool>: what went wrong (how to fix it)`.
// Anything that is not an RbtraceError is a bug and shows its stack with --verbose.

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export class RbtraceError extends Error {
  readonly hint?: string;
  readonly exitCode: number;
  /** Longer diagnostics (a verifier log, ...) shown in part, or whole with --verbose. */
  readonly details?: string;

  constructor(message: string, opts: { hint?: string; exitCode?: number; details?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'RbtraceError';
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT_RUNTIME;
    this.details = opts.details;
  }
}

/** Bad flags, bad values: exit status 2. */
export class UsageError extends RbtraceError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: EXIT_USAGE });
    this.name = 'UsageError';
  }
}

export function errorLine(prefix: string, err: unknown): string {
  if (err instanceof RbtraceError) return `${prefix}: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  const msg = err instanceof Error ? err.message : String(err);
  return `${prefix}: internal error: ${msg} (rerun with --verbose for the stack trace)`;
}

/** Turn a negative libbpf return value or an errno into a readable reason. */
export function errnoText(err: number): string {
  const code = Math.abs(err);
  const names: Record<number, string> = {
    1: 'EPERM: operation not permitted', 2: 'ENOENT: no such file or entry', 3: 'ESRCH: no such process',
    7: 'E2BIG: argument list too long', 9: 'EBADF: bad file descriptor', 12: 'ENOMEM: out of memory',
    13: 'EACCES: permission denied', 14: 'EFAULT: bad address', 16: 'EBUSY: busy', 17: 'EEXIST: exists',
    19: 'ENODEV: no such device', 22: 'EINVAL: invalid argument', 28: 'ENOSPC: no space',
    38: 'ENOSYS: not implemented', 95: 'EOPNOTSUPP: not supported', 524: 'ENOTSUPP: not supported by this kernel',
    4001: 'LIBBPF_ERRNO__FORMAT: bad ELF object', 4003: 'LIBBPF_ERRNO__LOAD: load failed',
  };
  return names[code] ?? `errno ${code}`;
}
