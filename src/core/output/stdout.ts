// stdout for tools: data only (diagnostics go to stderr), text or NDJSON,
// and a closed pipe (`rbtrace execsnoop | head -3`) ends the run quietly.
import { ndjson } from './json.js';

export class Output {
  private closed = false;
  private onClosed?: () => void;

  constructor(
    readonly json: boolean,
    private readonly stream: NodeJS.WriteStream = process.stdout,
  ) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.markClosed();
      else throw err;
    });
  }

  get isTTY(): boolean {
    return Boolean(this.stream.isTTY);
  }

  get columns(): number {
    return this.stream.columns || 80;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Called once when the reader goes away. */
  whenClosed(fn: () => void): void {
    this.onClosed = fn;
  }

  write(text: string): void {
    if (this.closed) return;
    try {
      this.stream.write(text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') this.markClosed();
      else throw err;
    }
  }

  line(text = ''): void {
    this.write(text + '\n');
  }

  /** One NDJSON record. */
  record(obj: unknown): void {
    this.write(ndjson(obj));
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed?.();
  }
}
