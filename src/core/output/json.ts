// NDJSON for --json: one event or summary per line, so consumers can stream
// with `jq -c` or split on '\n' safely.

/** JSON.stringify replacer: u64 values arrive as bigint from maps and events. */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') {
    // A number when it round-trips exactly, else a string: never lose digits.
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  return value;
}

/**
 * One JSON line terminated by '\n'. undefined fields are dropped (JSON's own
 * rule). JSON.stringify already escapes \n and \r inside strings; U+2028 and
 * U+2029 are escaped too because some line readers treat them as newlines.
 */
export function ndjson(obj: unknown): string {
  return jsonText(obj) + '\n';
}

/** ndjson() without the newline: one value's JSON text, for a writer that assembles a record from parts. */
export function jsonText(obj: unknown): string {
  // Without a replacer first: it is called for every key and makes a large
  // record (synqueue's 10,000 listeners) 2-3 times slower. Only a bigint
  // needs it, and JSON.stringify throws on one.
  let s: string;
  try {
    s = JSON.stringify(obj) ?? 'null';
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    s = JSON.stringify(obj, replacer) ?? 'null';
  }
  return escapeLineSeparators(s);
}

/**
 * U+2028 and U+2029 as \u escapes. The test first: a string V8 stores one
 * byte a character (all-ASCII or Latin-1 output, the usual case) cannot hold
 * them, and includes() knows that without a scan, while each replace() scans
 * the whole text (2-10 ms for synqueue's 3 MB at 10,000 listeners).
 */
function escapeLineSeparators(s: string): string {
  if (!s.includes('\u2028') && !s.includes('\u2029')) return s;
  return s.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

// ignoreBOM: keep a leading U+FEFF (by default a decoder drops it: a lost byte).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder('utf-8', { ignoreBOM: true });

/** Bytes from the traced system as text: U+FFFD where they are not UTF-8. */
export function bytesText(bytes: Uint8Array): string {
  return lossy.decode(bytes);
}

/**
 * Bytes from the traced system (argv, paths, comm: bytes, not text) for a
 * JSON record, losslessly: the text, and when the bytes are not valid UTF-8
 * (the text then has U+FFFD) their exact value in base64 too. Tools put the
 * latter in a `<field>_base64` beside the field.
 */
export function bytesJson(bytes: Uint8Array): { text: string; base64?: string } {
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    return { text: lossy.decode(bytes), base64: Buffer.from(bytes).toString('base64') };
  }
}
