// --assert EXPR: conditions over a run's figures, e.g.
//   'openat.errors < 100'   'realloc.count <= 40k'   'p99 < 2ms'   'overflows == 0'
//   'total.count > 0 and "127.0.0.1:8080".drops == 0'
// Grammar (hand-written recursive descent, so errors can say where):
//   expr    := and ('or' and)*
//   and     := unary ('and' unary)*
//   unary   := 'not' unary | '(' expr ')' | compare
//   compare := operand ('<' | '<=' | '>' | '>=' | '==' | '!=') operand
//   operand := NUMBER [unit] | path
//   path    := segment ['?'] ('.' segment)*      segment := NAME | "quoted"
// Units: ns us µs ms s (times; a duration figure must be compared with one)
// and k M G (x1000). Identifiers: ROW.FIELD (a row by its key: openat,
// realloc, "127.0.0.1:8080"), total.FIELD (sum over rows), or FIELD (a figure
// of the whole run, else the total). FIELD may drop _ns: p99 = p99_ns.
// Rows: where a tool knows every row there can be (syscalls, malloc's
// functions), a name outside that set is a usage error, and a known row that
// never occurred counts as 0. Where rows are open (listeners, processes,
// functions by pattern), a row absent from the run fails the assertion,
// unless its name ends in '?': 'ROW?.FIELD' counts an absent row as 0.
import { UsageError } from '../errors.js';

export type Op = '<' | '<=' | '>' | '>=' | '==' | '!=';

export type Operand =
  | { kind: 'number'; value: number; time: boolean; text: string }
  | { kind: 'path'; segments: string[]; text: string; absentIsZero?: boolean };

export type Node =
  | { kind: 'cmp'; op: Op; left: Operand; right: Operand }
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'not'; expr: Node };

export interface Assertion {
  text: string;
  ast: Node;
}

const MULTIPLIERS: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9 };
const TIME_SUFFIXES: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9 };

interface Token {
  type: 'num' | 'name' | 'str' | 'op' | '(' | ')' | '.' | '?' | 'end';
  text: string;
  pos: number;
  value?: number;
  time?: boolean;
}

function fail(text: string, pos: number, what: string): never {
  throw new UsageError(`--assert '${text}': ${what} at column ${pos + 1}`, 'see ASSERTIONS in man rbtrace');
}

function lex(text: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    const num = /^(\d+(?:\.\d+)?(?:e[+-]?\d+)?)([A-Za-zµ]*)/.exec(text.slice(i));
    if (num && /\d/.test(c)) {
      const [all, digits, unit] = num;
      let value = Number(digits);
      let time = false;
      if (unit) {
        if (TIME_SUFFIXES[unit] !== undefined) { value *= TIME_SUFFIXES[unit]; time = true; }
        else if (MULTIPLIERS[unit] !== undefined) value *= MULTIPLIERS[unit];
        else fail(text, i + digits.length, `unknown unit '${unit}' (units: ns us ms s, k M G)`);
      }
      toks.push({ type: 'num', text: all, pos: start, value, time });
      i += all.length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i));
    if (name) {
      toks.push({ type: 'name', text: name[0], pos: start });
      i += name[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail(text, i, 'unterminated quoted name');
      toks.push({ type: 'str', text: text.slice(i + 1, end), pos: start });
      i = end + 1;
      continue;
    }
    const op = /^(<=|>=|==|!=|<|>)/.exec(text.slice(i));
    if (op) {
      toks.push({ type: 'op', text: op[0], pos: start });
      i += op[0].length;
      continue;
    }
    if (c === '(' || c === ')' || c === '.' || c === '?') {
      toks.push({ type: c, text: c, pos: start });
      i++;
      continue;
    }
    if (c === '=') fail(text, i, "unexpected '=' (comparisons: < <= > >= == !=)");
    fail(text, i, `unexpected '${c}'`);
  }
  toks.push({ type: 'end', text: '', pos: text.length });
  return toks;
}

// Bounds on one expression: far past any condition a person writes, well
// short of the recursion (parsing, checking, evaluating) that overflows the
// stack at ~3,000 levels or ~4,000 joined conditions.
export const MAX_ASSERT_LENGTH = 4096;
export const MAX_ASSERT_DEPTH = 32;
export const MAX_ASSERT_CONDITIONS = 256;

/** Parse one --assert expression; a UsageError (one line, exit 2) on bad syntax. */
export function parseAssertion(text: string): Assertion {
  if (text.length > MAX_ASSERT_LENGTH) {
    throw new UsageError(`--assert: an expression of ${text.length} characters (at most ${MAX_ASSERT_LENGTH})`, 'split it into several --assert options');
  }
  const toks = lex(text);
  let k = 0;
  let depth = 0;
  let conditions = 0;
  const peek = (ahead = 0) => toks[Math.min(k + ahead, toks.length - 1)];
  const isWord = (w: string) => peek().type === 'name' && peek().text === w;
  const describe = (t: Token) => (t.type === 'end' ? 'end of expression' : `'${t.text}'`);

  const operand = (): Operand => {
    const t = peek();
    if (t.type === 'num') {
      k++;
      return { kind: 'number', value: t.value!, time: Boolean(t.time), text: t.text };
    }
    if ((t.type === 'name' && !['and', 'or', 'not'].includes(t.text)) || t.type === 'str') {
      const segments = [t.text];
      let question: { at: number; pos: number } | undefined;
      const misplaced = (pos: number): never => fail(text, pos, "'?' goes after a row's name, before '.FIELD' (ROW?.FIELD: an absent row counts as 0)");
      k++;
      for (;;) {
        if (peek().type === '?') {
          if (question || peek(1).type !== '.') misplaced(peek().pos);
          question = { at: segments.length, pos: peek().pos };
          k++;
        }
        if (peek().type !== '.') break;
        k++;
        const s = peek();
        if (s.type !== 'name' && s.type !== 'str' && s.type !== 'num') fail(text, s.pos, `a name after '.', not ${describe(s)}`);
        segments.push(s.text);
        k++;
      }
      // Only right after the whole row's name (the row's key may span segments: comm.name).
      if (question && question.at !== segments.length - 1) misplaced(question.pos);
      const absentIsZero = question !== undefined;
      const shown = segments.map((s) => (/^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(s)));
      if (absentIsZero) shown[shown.length - 2] += '?';
      return { kind: 'path', segments, text: shown.join('.'), ...(absentIsZero ? { absentIsZero } : {}) };
    }
    return fail(text, t.pos, `expected a figure or a number, found ${describe(t)}`);
  };

  const compare = (): Node => {
    const left = operand();
    const t = peek();
    if (t.type !== 'op') fail(text, t.pos, `expected a comparison (< <= > >= == !=), found ${describe(t)}`);
    k++;
    const right = operand();
    if (left.kind === 'number' && right.kind === 'number') fail(text, t.pos, 'a comparison of two numbers (name a figure)');
    if (++conditions > MAX_ASSERT_CONDITIONS) fail(text, t.pos, `more than ${MAX_ASSERT_CONDITIONS} conditions in one expression (split it into several --assert options)`);
    return { kind: 'cmp', op: t.text as Op, left, right };
  };

  const unary = (): Node => {
    if (!isWord('not') && peek().type !== '(') return compare();
    if (++depth > MAX_ASSERT_DEPTH) fail(text, peek().pos, `nested more than ${MAX_ASSERT_DEPTH} deep (parentheses and 'not')`);
    let node: Node;
    if (isWord('not')) {
      k++;
      node = { kind: 'not', expr: unary() };
    } else {
      k++;
      node = expr();
      if (peek().type !== ')') fail(text, peek().pos, `expected ')', found ${describe(peek())}`);
      k++;
    }
    depth--;
    return node;
  };

  const and = (): Node => {
    let left = unary();
    while (isWord('and')) {
      k++;
      left = { kind: 'and', left, right: unary() };
    }
    return left;
  };

  const expr = (): Node => {
    let left = and();
    while (isWord('or')) {
      k++;
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };

  if (text.trim() === '') throw new UsageError("--assert wants an expression", "e.g. --assert 'total.count > 0'");
  const ast = expr();
  if (peek().type !== 'end') fail(text, peek().pos, `unexpected ${describe(peek())} (join conditions with and/or)`);
  return { text, ast };
}

/** commander argParser: --assert may be given many times. */
export function collectAssertion(text: string, previous: Assertion[] | undefined): Assertion[] {
  return [...(previous ?? []), parseAssertion(text)];
}
