// Terminal tables in the style of ps(1) and bcc's summaries: a header row and
// aligned columns separated by two spaces, no box drawing (which gets in the
// way of grep/awk and of narrow terminals).
//
// Every string cell is escaped (escapeForTerminal): cells hold comm, paths,
// symbol names from the traced system, and a table cannot know which, so it
// assumes all. Text of the tool's own that must reach the terminal as is
// (colours, already escaped argv) is passed as styled(text).
import { createRequire } from 'node:module';
import type { ChalkInstance } from 'chalk';
import { cellText, escapeForTerminal, type Cell } from './format.js';


export type Align = 'left' | 'right';

export interface TableOptions {
  /** Per-column alignment; default: right for columns whose cells are all numbers, else left. */
  align?: Align[];
  /** Used to embolden the header; pass createColor(...) so pipes stay plain. */
  color?: ChalkInstance;
  /**
   * Fit the table in this many columns by wrapping the cells of the `wrap`
   * columns (at word boundaries) instead of letting one long cell pad every row.
   */
  fit?: { width: number; wrap: number[] };
}

// Visible width: colour escapes take no room on screen.
const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (s: string) => s.replace(ANSI, '').length;

/**
 * Lines of at most `width` visible characters, broken at spaces; a word
 * longer than a line (a path) is cut across lines, never shortened.
 */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (let word of paragraph.split(' ')) {
      while (visible(word) > width) {
        if (line) lines.push(line);
        line = '';
        lines.push(word.slice(0, width));
        word = word.slice(width);
      }
      if (!line) line = word;
      else if (visible(line) + 1 + visible(word) <= width) line += ` ${word}`;
      else {
        lines.push(line);
        line = word;
      }
    }
    lines.push(line);
  }
  return lines;
}

/** The narrowest a wrapped column gets, however narrow the terminal. */
const MIN_WRAP = 16;

/**
 * Widths of the wrapped columns (undefined: as wide as their cells): they
 * share what the others leave, in proportion to their natural widths.
 */
function colWidths(natural: number[], fit: { width: number; wrap: number[] }, least: number[] = []): (number | undefined)[] {
  const wrapped = new Set(fit.wrap);
  const fixed = natural.reduce((a, w, c) => (wrapped.has(c) ? a : a + w), 0);
  const want = natural.reduce((a, w, c) => (wrapped.has(c) ? a + w : a), 0);
  const room = fit.width - 1 - fixed;
  if (want <= room) return natural.map(() => undefined);
  // A wrapped column is never narrower than its header (which does not
  // wrap): what that takes beyond its share comes off the other wrapped ones.
  const floor = (c: number) => Math.max(MIN_WRAP, least[c] ?? 0);
  const out = natural.map((w, c) => (wrapped.has(c) ? Math.max(floor(c), Math.floor((room * w) / want)) : undefined));
  let over = out.reduce<number>((a, w) => a + (w ?? 0), 0) - room;
  for (const c of [...wrapped].sort((a, b) => (out[b] ?? 0) - (out[a] ?? 0))) {
    if (over <= 0) break;
    const give = Math.min(over, (out[c] ?? 0) - floor(c));
    if (give > 0) [out[c], over] = [out[c]! - give, over - give];
  }
  return out;
}

// string-width, cli-table3's own measure (CJK and emoji take two columns,
// combining marks none), resolved from cli-table3 so that it is the copy
// cli-table3 uses. Loaded on the first table, not at start-up (execsnoop
// never needs it).
type Measure = (s: string) => number;
const PLAIN = /^[\x20-\x7e]*$/;
let measureFn: Measure | undefined;
function measure(): Measure {
  if (!measureFn) {
    const fromTable = createRequire(createRequire(import.meta.url).resolve('cli-table3'));
    const stringWidth = fromTable('string-width') as Measure;
    // Printable ASCII (most cells) is one column a character: string-width's regexes cost 3x the rest of a table.
    measureFn = (s) => (PLAIN.test(s) ? s.length : stringWidth(s));
  }
  return measureFn;
}

/**
 * Render rows under headers. Returns complete lines ending in '\n' (trailing
 * blanks trimmed), or just the header line when there are no rows.
 *
 * The layout is cli-table3's borderless one (columns two spaces apart, each
 * as wide as its widest line, a wrapped cell's lines on lines of their own),
 * drawn here in one pass: cli-table3 lays a table out in time quadratic in
 * its rows (20,000 rows took a minute in rbtrace diff) and overflows the
 * stack past ~200,000. test/unit/table.test.ts holds both to one output.
 */
export function renderTable(
  headers: string[],
  rows: Cell[][],
  opts: TableOptions = {},
): string {
  const width = measure();
  const align = headers.map(
    (_, c) => opts.align?.[c] ?? (rows.length > 0 && rows.every((r) => typeof r[c] === 'number') ? 'right' : 'left'),
  );
  const head = headers.map((h) => (opts.color ? opts.color.bold(escapeForTerminal(h)) : escapeForTerminal(h)));
  let cells: string[][][] = rows.map((r) => headers.map((_, c) => [cellText(r[c])]));
  // Each column's widest cell + 1 (the padding before the separator); a
  // loop, not Math.max(...): spreading 10^5 rows overflows the stack.
  const natural = head.map((h) => width(h) + 1);
  for (const r of cells) for (let c = 0; c < natural.length; c++) natural[c] = Math.max(natural[c], width(r[c][0]) + 1);
  let widths = natural;
  if (opts.fit) {
    // Wrapped at word boundaries here: cli-table3's wrapping cut a path longer than its column to '…'.
    const fixed = colWidths(natural.map((w) => w + 1), opts.fit, head.map((h) => width(h) + 2));
    cells = cells.map((r) => r.map((cell, c) => (fixed[c] ? wrapText(cell[0], fixed[c]! - 2) : cell)));
    // A wrapped column is as wide as its widest line.
    widths = natural.map((w, c) => {
      if (!fixed[c]) return w;
      let most = width(head[c]) + 1;
      for (const r of cells) for (const line of r[c]) most = Math.max(most, width(line) + 1);
      return most;
    });
  }
  // Aligned within the column, less its padding; then the padding and the separator.
  const pad = (s: string, c: number) => {
    const fill = ' '.repeat(Math.max(0, widths[c] - 1 - width(s)));
    return align[c] === 'right' ? fill + s : s + fill;
  };
  const out: string[] = [];
  const emit = (row: string[][]) => {
    let height = 1;
    for (const cell of row) height = Math.max(height, cell.length);
    for (let l = 0; l < height; l++) out.push(row.map((cell, c) => pad(cell[l] ?? '', c)).join('  ').replace(/\s+$/, ''));
  };
  emit(head.map((h) => [h]));
  for (const r of cells) emit(r);
  return out.join('\n') + '\n';
}

export interface Column {
  name: string;
  /** Minimum width (printf's %-Ns); ignored for the last column, which is unbounded. */
  width: number;
  align?: Align;
}

function pad(s: string, width: number, align: Align): string {
  const fill = width - visible(s);
  if (fill <= 0) return s; // like printf: never truncate, the column just grows
  return align === 'right' ? ' '.repeat(fill) + s : s + ' '.repeat(fill);
}

/**
 * Fixed-width event lines for streaming tools, as bcc's execsnoop prints with
 * "%-16s %-7s %-7s %3s %s": columns are padded to their width and separated by
 * one space; the last column is printed as is. Streaming output cannot use
 * renderTable because widths must be fixed before the first event arrives.
 */
export class ColumnPrinter {
  readonly columns: Column[];

  constructor(columns: Column[]) {
    if (columns.length === 0) throw new Error('ColumnPrinter needs at least one column');
    this.columns = columns;
  }

  /** The header line (column names, same padding as rows), ending in '\n'. */
  header(): string {
    return this.row(this.columns.map((c) => c.name));
  }

  /** One event line ending in '\n'. Missing values print as empty cells; strings are escaped (see Cell). */
  row(values: Cell[]): string {
    const last = this.columns.length - 1;
    const cells = this.columns.map((c, i) => {
      const v = cellText(values[i]);
      return i === last ? v : pad(v, c.width, c.align ?? 'left');
    });
    const line = cells.join(' ');
    // An empty last cell would leave padding at the end of the line; drop it
    // (but never touch a non-empty last value: trailing blanks may be data).
    return (cells[last] === '' ? line.replace(/ +$/, '') : line) + '\n';
  }
}
