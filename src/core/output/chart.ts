// Live line charts for interval tools on a terminal (e.g. syscount -i 1 on a
// TTY). Meant only for TTYs: callers pick tables or NDJSON when stdout is a pipe.
import { createRequire } from 'node:module';
import { escapeForTerminal } from './format.js';

// asciichart is CommonJS without type declarations: load it through require
// and describe the small part we use.
interface AsciiChart {
  plot(series: number[] | number[][], cfg?: { height?: number; colors?: (string | undefined)[]; format?: (x: number) => string }): string;
  reset: string;
  [color: string]: unknown;
}
const asciichart = createRequire(import.meta.url)('asciichart') as AsciiChart;

/** asciichart's colour names, e.g. 'red', 'lightblue'. */
export type ChartColor =
  | 'black' | 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'lightgray' | 'default'
  | 'darkgray' | 'lightred' | 'lightgreen' | 'lightyellow' | 'lightblue' | 'lightmagenta' | 'lightcyan' | 'white';

export interface ChartSeries {
  name: string;
  color?: ChartColor;
}

export interface LiveChartOptions {
  title: string;
  series: ChartSeries[];
  /** Points kept per series (older ones scroll out); default 60. */
  maxPoints?: number;
  /** Chart height in rows; default 10. */
  height?: number;
  /** false: no ANSI colours (pass colorLevel(stream) > 0). Default true. */
  color?: boolean;
  /** Label format for the y axis; default 2 decimals in a 10-wide column. */
  format?: (x: number) => string;
}

const DEFAULT_COLORS: ChartColor[] = ['green', 'cyan', 'yellow', 'magenta', 'red', 'blue'];

export class LiveChart {
  private readonly opts: Required<Omit<LiveChartOptions, 'format'>> & Pick<LiveChartOptions, 'format'>;
  private readonly data = new Map<string, number[]>();
  /** Lines written by the previous draw(), to move the cursor back over them. */
  private prevLines = 0;

  constructor(opts: LiveChartOptions) {
    if (opts.series.length === 0) throw new Error('LiveChart needs at least one series');
    this.opts = { maxPoints: 60, height: 10, color: true, ...opts };
    for (const s of opts.series) this.data.set(s.name, []);
  }

  /**
   * Append one point per series. A series missing from `values` repeats its
   * last value (0 at first): asciichart cannot draw gaps, and every series
   * must stay the same length to share the x axis.
   */
  push(values: Record<string, number>): void {
    for (const [name, points] of this.data) {
      const v = values[name];
      points.push(Number.isFinite(v) ? v : (points.at(-1) ?? 0));
      if (points.length > this.opts.maxPoints) points.splice(0, points.length - this.opts.maxPoints);
    }
  }

  private colorOf(i: number): string | undefined {
    if (!this.opts.color) return undefined;
    const name = this.opts.series[i].color ?? DEFAULT_COLORS[i % DEFAULT_COLORS.length];
    return asciichart[name] as string;
  }

  /** Title, chart and legend as complete lines ending in '\n'. */
  render(): string {
    const series = this.opts.series.map((s) => this.data.get(s.name)!);
    const legend = this.opts.series
      .map((s, i) => {
        const c = this.colorOf(i);
        return c ? `${c}━━${asciichart.reset} ${escapeForTerminal(s.name)}` : `-- ${escapeForTerminal(s.name)}`;
      })
      .join('   ');
    // The title and names may quote a process (comm) or a path: escaped.
    const title = escapeForTerminal(this.opts.title);
    if (series[0].length === 0) return `${title}\n(no data yet)\n${legend}\n`;
    const plot = asciichart.plot(series, {
      height: this.opts.height,
      colors: this.opts.series.map((_, i) => this.colorOf(i)),
      ...(this.opts.format ? { format: this.opts.format } : {}),
    });
    return `${title}\n${plot}\n${legend}\n`;
  }

  /**
   * Redraw in place: move the cursor up over the previous frame, clear to the
   * end of the screen, write the new one. Only correct on a TTY, and only if
   * nothing else was written to the stream since the last draw().
   */
  draw(stream: { write(s: string): unknown }): void {
    const frame = this.render();
    const up = this.prevLines > 0 ? `\x1b[${this.prevLines}A\r\x1b[0J` : '';
    stream.write(up + frame);
    this.prevLines = frame.split('\n').length - 1;
  }
}
