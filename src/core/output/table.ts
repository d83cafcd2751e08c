// Terminal tables in the style of ps(1) and bcc's summaries: a header row and
// aligned columns separated by two spaces, no box drawing (which gets in the
// way of grep/awk and of narrow terminals).
//
// Every string cell is escaped (escapeForTerminal): cells hold comm, paths,
// symbol names from the traced system, and a table cannot know which, so it
// assumes all. Text of the tool's own that must reach the terminal as is
// (colours, already escaped argv) is passed as styled(text).
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
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
// eslint-disable-next-line no-control-regex
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
 * Widths for cli-table3 (null: as wide as its cells): the wrapped columns
 * share what the others leave, in proportion to their natural widths.
 */
function colWidths(headers: string[], cells: string[][], fit: { width: number; wrap: number[] }): (number | null)[] {
  // Each column is its widest cell + 1 padding + 1 separator.
  const natural = headers.map((h, c) => Math.max(visible(h), ...cells.map((r) => Math.max(...r[c].split('\n').map(visible)))) + 2);
  const wrapped = new Set(fit.wrap);
  const fixed = natural.reduce((a, w, c) => (wrapped.has(c) ? a : a + w), 0);
  const want = natural.reduce((a, w, c) => (wrapped.has(c) ? a + w : a), 0);
  const room = fit.width - 1 - fixed;
  if (want <= room) return natural.map(() => null);
  return natural.map((w, c) => (wrapped.has(c) ? Math.max(MIN_WRAP, Math.floor((room * w) / want)) : null));
}

const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '',
  right: '', 'right-mid': '', middle: ' ',
};

// cli-table3 (with string-width and emoji-regex) costs ~5 MB of RSS at load:
// load it on the first table, not at start-up (execsnoop never needs it).
let TableCtor: typeof TableType | undefined;
function tableClass(): typeof TableType {
  TableCtor ??= createRequire(import.meta.url)('cli-table3') as typeof TableType;
  return TableCtor;
}

/**
 * Render rows under headers. Returns complete lines ending in '\n' (trailing
 * blanks trimmed), or just the header line when there are no rows.
 */
export function renderTable(
  headers: string[],
  rows: Cell[][],
  opts: TableOptions = {},
): string {
  const align = headers.map(
    (_, c) => opts.align?.[c] ?? (rows.length > 0 && rows.every((r) => typeof r[c] === 'number') ? 'right' : 'left'),
  );
  const Table = tableClass();
  const cells = rows.map((r) => headers.map((_, c) => cellText(r[c])));
  const table = new Table({
    head: headers.map((h) => (opts.color ? opts.color.bold(escapeForTerminal(h)) : escapeForTerminal(h))),
    chars: BORDERLESS,
    // padding-right 1 + the ' ' middle separator = two spaces between columns.
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 1, compact: true },
    colAligns: align,
  });
  const widths = opts.fit ? colWidths(headers, cells, opts.fit) : [];
  // Wrapped here, not by cli-table3 (whose word wrap cuts a path longer than its column to '…').
  for (const r of cells) table.push(r.map((cell, c) => (widths[c] ? wrapText(cell, widths[c]! - 2).join('\n') : cell)));
  return table
    .toString()
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n') + '\n';
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
