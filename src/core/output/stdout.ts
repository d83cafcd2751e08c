// A tool's report, text or NDJSON: data only (diagnostics go to stderr), on
// the stream src/core/output/sink.ts picks (stdout, stderr with -- CMD, -o FILE).
// A closed pipe (`rbtrace execsnoop | head -3`) ends the run quietly; any
// other failed write (a full disk, an I/O error) ends it with a one-line
// error naming the output, exit status 1.
import { ndjson } from './json.js';
import { RbtraceError } from '../errors.js';
import { errnoName } from '../linux/names.js';

/** Why a write failed, in words: "no space left on device (ENOSPC)". */
function writeFailure(name: string, err: NodeJS.ErrnoException): RbtraceError {
  const words: Record<string, string> = {
    ENOSPC: 'no space left on device', EIO: 'input/output error', EBADF: 'it is closed', EDQUOT: 'disk quota exceeded',
    EFBIG: 'file too large', EACCES: 'permission denied', EPERM: 'operation not permitted', EINVAL: 'invalid argument',
  };
  const code = err.code ?? (typeof err.errno === 'number' ? errnoName(Math.abs(err.errno)) : undefined);
  const why = code ? `${words[code] ?? code.toLowerCase()} (${code})` : err.message;
  return new RbtraceError(`cannot write to ${name}: ${why}`, { hint: code === 'ENOSPC' || code === 'EDQUOT' ? 'free some space, or write elsewhere' : undefined });
}

export class Output {
  private closed = false;
  private failure?: RbtraceError;
  private onClosed?: () => void;
  private onFailed?: (err: RbtraceError) => void;

  constructor(
    readonly json: boolean,
    private readonly stream: NodeJS.WriteStream = process.stdout,
    /** How error messages name it. */
    readonly name = 'stdout',
  ) {
    stream.on('error', (err: NodeJS.ErrnoException) => this.failed(err));
  }

  get isTTY(): boolean {
    return Boolean(this.stream.isTTY);
  }

  get columns(): number {
    return this.stream.columns || 80;
  }

  /** The terminal's height, when this output is one (0 otherwise). */
  get rows(): number {
    return this.stream.isTTY ? this.stream.rows || 0 : 0;
  }

  /** The reader went away, or a write failed: nothing more can be written. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The write error that closed this output, if one did (a reader going away is not one). */
  get error(): RbtraceError | undefined {
    return this.failure;
  }

  /** Called once when the reader goes away. */
  whenClosed(fn: () => void): void {
    this.onClosed = fn;
  }

  /** Called once when a write fails (other than a reader going away). */
  whenFailed(fn: (err: RbtraceError) => void): void {
    this.onFailed = fn;
  }

  write(text: string | Uint8Array): void {
    if (this.closed) return;
    try {
      this.stream.write(text);
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException);
    }
  }

  line(text = ''): void {
    this.write(text + '\n');
  }

  /** One NDJSON record. */
  record(obj: unknown): void {
    this.write(ndjson(obj));
  }

  /**
   * Resolves once everything written so far has reached the kernel (write
   * errors on files arrive a tick after write()); throws the write error if
   * there was one.
   */
  async flush(): Promise<void> {
    if (!this.closed) {
      await new Promise<void>((resolve) => {
        try {
          this.stream.write('', () => resolve());
        } catch {
          resolve();
        }
      });
      // An 'error' event follows the callback on the next tick.
      await new Promise((r) => setImmediate(r));
    }
    if (this.failure) throw this.failure;
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (this.closed) return;
    this.closed = true;
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
      this.onClosed?.();
      return;
    }
    this.failure = writeFailure(this.name, err);
    this.onFailed?.(this.failure);
  }
}
