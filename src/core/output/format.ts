// Small value formatters shared by the tools' renderers. They are pure and
// locale-independent on purpose: output must be identical on every machine so
// that tests and scripts can rely on it.

/** 3 significant digits for 1 <= v < 1000: 1.23, 12.3, 123. */
function sig3(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * Scale v through units (each `factor` times the previous) and print it with
 * 3 significant digits; the base unit is printed as an integer (no "12.0 ns").
 * The unit is chosen from the *rounded* text, so 999.96 us becomes "1.00 ms",
 * never "1000 us".
 */
function scaled(v: number, units: string[], factor: number): string {
  const neg = v < 0;
  let a = Math.abs(v);
  for (let i = 0; ; i++) {
    const s = i === 0 ? String(Math.round(a)) : sig3(a);
    if (Number(s) >= factor && i < units.length - 1) {
      a /= factor;
      continue;
    }
    return `${neg && Number(s) !== 0 ? '-' : ''}${s} ${units[i]}`;
  }
}

/** Nanoseconds with an automatic unit: "950 ns", "1.23 us", "45.6 ms", "2.00 s". */
export function formatDuration(ns: number | bigint): string {
  const v = Number(ns);
  if (!Number.isFinite(v)) return String(v);
  return scaled(v, ['ns', 'us', 'ms', 's'], 1000);
}

/** Bytes with binary units: "512 B", "1.50 KiB", "12.0 MiB", "3.00 GiB". */
export function formatBytes(n: number | bigint): string {
  const v = Number(n);
  if (!Number.isFinite(v)) return String(v);
  return scaled(v, ['B', 'KiB', 'MiB', 'GiB'], 1024);
}

/** Integer with ',' thousands separators (not toLocaleString: that depends on ICU/locale). */
/** "1 sample", "2 samples", "1,000 samples": a count and its noun, singular for exactly one. */
export function plural(n: number | bigint, noun: string, many = `${noun}s`): string {
  return `${formatCount(n)} ${n === 1 || n === 1n ? noun : many}`;
}

export function formatCount(n: number | bigint): string {
  if (typeof n === 'number' && !Number.isInteger(n)) return String(n);
  const s = typeof n === 'bigint' ? n.toString() : BigInt(n).toString();
  const neg = s.startsWith('-');
  const digits = neg ? s.slice(1) : s;
  return (neg ? '-' : '') + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function hex2(n: number): string {
  return '\\x' + n.toString(16).padStart(2, '0');
}

// Code points a terminal must never receive raw from the traced system:
// controls (C0, DEL, C1: ESC starts a sequence, 0x9b is a one-byte CSI on
// some terminals), lone surrogates, invisible format characters (Cf: the
// bidirectional overrides and isolates U+202A-202E and U+2066-2069 that make
// a name read backwards, zero-width spaces and joiners, U+FEFF, tag
// characters) and the line and paragraph separators U+2028/U+2029.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

/** Escape one code point for terminal output, or return it unchanged if printable. */
function escapeCodePoint(cp: number): string {
  switch (cp) {
    case 0x0a: return '\\n';
    case 0x09: return '\\t';
    case 0x0d: return '\\r';
    // Escaped so that every escape in the output is ours: a name holding the
    // text "\x1b" prints as "\\x1b", never as what an ESC prints as.
    case 0x5c: return '\\\\';
  }
  if (cp < 0x20 || cp === 0x7f) return hex2(cp);
  const ch = String.fromCodePoint(cp);
  if ((cp >= 0x80 && cp < 0xa0) || UNSAFE.test(ch)) {
    // \u, not \x: cannot be confused with the \xNN of a byte that is not UTF-8.
    return cp > 0xffff ? `\\u{${cp.toString(16)}}` : '\\u' + cp.toString(16).padStart(4, '0');
  }
  return ch;
}

/**
 * THE escaping function for text from the traced system on its way to a
 * terminal (comm, paths, argv, symbol names, library paths, kernel strings):
 * \n \t \r and backslash escaped; other C0 controls and DEL as \xNN; C1
 * controls, lone surrogates, invisible format characters (bidi overrides and
 * isolates, zero-width characters) and U+2028/9 as \uNNNN (\u{NNNNN} past
 * U+FFFF); every other character, non-ASCII text included, kept as is.
 * JSON output does not use this: JSON escaping is exact on its own.
 */
export function escapeForTerminal(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++; // astral: two UTF-16 units
    out += escapeCodePoint(cp);
  }
  return out;
}

/** The name execsnoop's argv printing has always used: the same function. */
export const escapeArg = escapeForTerminal;

/**
 * Text printed as is by tables, column printers and term``: the tool's own
 * (coloured, or laid out) or already escaped. Everything else from a tool
 * that reaches them as a string is escaped.
 */
export class Styled {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Mark text as the tool's own, printed as is (see Styled). Never pass text from the traced system. */
export function styled(text: string): Styled {
  return new Styled(text);
}

/** A table cell, or a value in term``: strings are escaped, numbers printed, Styled text kept. */
export type Cell = string | number | bigint | Styled | undefined;

/** What a cell prints as. */
export function cellText(v: Cell): string {
  if (v === undefined) return '';
  if (v instanceof Styled) return v.text;
  return typeof v === 'string' ? escapeForTerminal(v) : String(v);
}

/**
 * Tagged template for a line of a tool's own text with values in it:
 * term`Tracing ${func} in ${binary}` escapes the interpolated strings (they
 * come from the user or the traced system); numbers print as numbers and
 * styled() text as is.
 */
export function term(strings: TemplateStringsArray, ...values: Cell[]): string {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += cellText(values[i]) + strings[i + 1];
  return out;
}

/**
 * escapeForTerminal() from raw bytes as read from the kernel (argv, comm,
 * paths are bytes, not text): valid UTF-8 sequences are decoded, every byte
 * that is not part of one is written as \xNN, so nothing is lost or replaced
 * with U+FFFD. NUL bytes are escaped too: cut C strings at their NUL first.
 */
export function escapeBytesForTerminal(buf: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    let len = 0;
    let cp = 0;
    let min = 0;
    if (b < 0x80) { len = 1; cp = b; }
    else if (b >= 0xc2 && b <= 0xdf) { len = 2; cp = b & 0x1f; min = 0x80; }
    else if (b >= 0xe0 && b <= 0xef) { len = 3; cp = b & 0x0f; min = 0x800; }
    else if (b >= 0xf0 && b <= 0xf4) { len = 4; cp = b & 0x07; min = 0x10000; }
    let ok = len > 0 && i + len <= buf.length;
    for (let k = 1; ok && k < len; k++) {
      const c = buf[i + k];
      if ((c & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (c & 0x3f);
    }
    // Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if (ok && len > 1 && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) {
      out += hex2(b);
      i += 1;
      continue;
    }
    out += escapeCodePoint(cp);
    i += len;
  }
  return out;
}

/** Older name of escapeBytesForTerminal(). */
export const escapeBytes = escapeBytesForTerminal;

/**
 * Quote an argument the way bcc's `execsnoop -q` does: wrap it in double
 * quotes and backslash-escape embedded double quotes (only those, as bcc).
 * Combine with escapeForTerminal() first when the argument may hold control characters.
 */
export function shellQuote(s: string): string {
  return '"' + s.replace(/"/g, '\\"') + '"';
}
