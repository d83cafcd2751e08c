// Demangling of Rust (legacy and v0) and Itanium C++ symbol names, far
// enough to give qualified names ('app::parse', 'ns::Class::method') so
// users can name functions as they wrote them: libbpf 1.1 resolves only raw
// symbol names. The symbols themselves come from src/core/elf/elf.ts.
import { stripVersion } from './elf.js';

/**
 * A readable, qualified name for a mangled symbol, or undefined if it is not
 * mangled (or not in a form understood here). Rust legacy (`_ZN...17h<hash>E`,
 * hash dropped), Rust v0 (`_R...`, paths only: generic arguments and crate
 * disambiguators are left out) and Itanium C++ (`_Z...`: the qualified name,
 * without parameter types or template arguments).
 */
export function demangle(sym: string): string | undefined {
  const name = stripVersion(sym).replace(/\.(llvm|lto_priv|constprop|isra|part|cold)\.[\w.]*$/, '');
  try {
    if (name.startsWith('_R')) return demangleRustV0(name.slice(2));
    if (name.startsWith('_ZN') || name.startsWith('__ZN')) {
      const legacy = demangleRustLegacy(name.replace(/^__/, '_'));
      if (legacy) return legacy;
    }
    if (name.startsWith('_Z')) return demangleItanium(name.slice(2));
  } catch {
    return undefined;
  }
  return undefined;
}

const RUST_ESCAPES: Record<string, string> = {
  SP: '@', BP: '*', RF: '&', LT: '<', GT: '>', LP: '(', RP: ')', C: ',',
};

function rustLegacyUnescape(s: string): string {
  let out = s.replace(/\$([A-Z]{1,2}|u[0-9a-f]+)\$/g, (m, code: string) => {
    if (code.startsWith('u')) return String.fromCodePoint(parseInt(code.slice(1), 16));
    return RUST_ESCAPES[code] ?? m;
  });
  out = out.replace(/\.\./g, '::');
  return out.startsWith('_$') ? out.slice(1) : out;
}

/** _ZN3app5parse17h0123456789abcdefE -> app::parse (only if the hash is there: else it is C++). */
function demangleRustLegacy(name: string): string | undefined {
  const parts = parseSourceNames(name, 3);
  if (!parts || parts.end >= name.length || name[parts.end] !== 'E') return undefined;
  const last = parts.names.at(-1);
  if (!last || !/^h[0-9a-f]{16}$/.test(last)) return undefined;
  return parts.names.slice(0, -1).map(rustLegacyUnescape).join('::');
}

/** <len><ident><len><ident>... starting at `at`. */
function parseSourceNames(s: string, at: number): { names: string[]; end: number } | undefined {
  const names: string[] = [];
  let i = at;
  while (i < s.length && s[i] >= '0' && s[i] <= '9') {
    let j = i;
    while (s[j] >= '0' && s[j] <= '9') j++;
    const len = Number(s.slice(i, j));
    names.push(s.slice(j, j + len));
    i = j + len;
  }
  return names.length ? { names, end: i } : undefined;
}

/** Rust v0's one-letter basic types (RFC 2603). */
const RUST_BASIC_TYPES: Record<string, string> = {
  a: 'i8', b: 'bool', c: 'char', d: 'f64', e: 'str', f: 'f32', h: 'u8', i: 'isize', j: 'usize', l: 'i32', m: 'u32',
  n: 'i128', o: 'u128', s: 'i16', t: 'u16', u: '()', v: '...', x: 'i64', y: 'u64', z: '!', p: '_',
};

/** Rust v0 (RFC 2603), paths only. */
function demangleRustV0(s: string): string | undefined {
  let i = 0;
  if (s[i] >= '0' && s[i] <= '9') { // encoding version
    while (s[i] >= '0' && s[i] <= '9') i++;
  }
  const base62 = (): number => {
    if (s[i] === '_') { i++; return 0; }
    let v = 0;
    while (i < s.length && s[i] !== '_') {
      const c = s[i++];
      const d = c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 87 : c.charCodeAt(0) - 29;
      v = v * 62 + d;
    }
    i++;
    return v + 1;
  };
  const binder = () => {
    if (s[i] === 'G') { i++; base62(); }
  };
  const disambiguator = () => {
    if (s[i] === 's') { i++; base62(); }
  };
  const ident = (): string => {
    disambiguator();
    const punycode = s[i] === 'u';
    if (punycode) i++;
    let j = i;
    while (s[j] >= '0' && s[j] <= '9') j++;
    const len = Number(s.slice(i, j));
    i = j;
    if (s[i] === '_') i++;
    const id = s.slice(i, i + len);
    i += len;
    return punycode ? id : id;
  };
  const path = (): string => {
    const tag = s[i++];
    switch (tag) {
      case 'C': return ident();                       // crate root
      case 'N': {                                     // nested: N <ns> <path> <ident>
        const ns = s[i++];
        const parent = path();
        const id = ident();
        if (ns >= 'A' && ns <= 'Z') return id ? `${parent}::{${ns === 'C' ? 'closure' : ns === 'S' ? 'shim' : ns}#${id}}` : `${parent}::{${ns === 'C' ? 'closure' : 'shim'}}`;
        return `${parent}::${id}`;
      }
      case 'M': { disambiguator(); path(); return type(); }   // inherent impl (after its module): the type's path
      case 'X': { disambiguator(); path(); const t = type(); const tr = path(); return `<${t} as ${tr}>`; }
      case 'Y': { const t = type(); const tr = path(); return `<${t} as ${tr}>`; }
      case 'I': {                                     // generic args: keep the path, drop the args
        const p = path();
        while (s[i] !== 'E' && i < s.length) genericArg();
        i++;
        return p;
      }
      case 'B': return backref(path, true);           // back reference to an earlier path
      default: throw new Error('v0: unknown path tag');
    }
  };
  const backref = <T>(parse: () => T, consumed = false): T => {
    if (!consumed) i++;
    const pos = base62();
    if (pos >= i) throw new Error('v0: forward back reference');
    const save = i;
    i = pos;
    const out = parse();
    i = save;
    return out;
  };
  const genericArg = (): void => {
    if (s[i] === 'L') { i++; base62(); return; }
    if (s[i] === 'K') { i++; constant(); return; }
    type();
  };
  const constant = (): void => {
    if (s[i] === 'p') { i++; return; }
    if (s[i] === 'B') { i++; base62(); return; }
    type();
    if (s[i] === 'n') i++;
    while (i < s.length && s[i] !== '_') i++;
    i++;
  };
  const type = (): string => {
    const c = s[i];
    const basic = RUST_BASIC_TYPES[c];
    if (basic) { i++; return basic; }
    switch (c) {
      case 'A': i++; type(); constant(); return '[_]';
      case 'S': i++; return `[${type()}]`;
      case 'T': { i++; const ts: string[] = []; while (s[i] !== 'E') ts.push(type()); i++; return `(${ts.join(', ')})`; }
      case 'R': case 'Q': i++; if (s[i] === 'L') { i++; base62(); } return `&${type()}`;
      case 'P': case 'O': i++; return `*${type()}`;
      case 'F': { // fn(args) -> ret: [G binder] [U] [K abi] {type} E type
        i++;
        binder();
        if (s[i] === 'U') i++;
        if (s[i] === 'K') { i++; if (s[i] === 'C') i++; else ident(); }
        const args: string[] = [];
        while (i < s.length && s[i] !== 'E') args.push(type());
        i++;
        return `fn(${args.join(', ')}) -> ${type()}`;
      }
      case 'D': { // dyn Trait + ...: [G binder] {path {p ident type}} E, then a lifetime
        i++;
        binder();
        const traits: string[] = [];
        while (i < s.length && s[i] !== 'E') {
          traits.push(path());
          while (s[i] === 'p') { i++; ident(); type(); }
        }
        i++;
        if (s[i] !== 'L') throw new Error('v0: dyn without lifetime');
        i++;
        base62();
        return `dyn ${traits.join(' + ')}`;
      }
      case 'B': i++; return backref(type, true);
      default: return path();
    }
  };
  const p = path();
  return p;
}

const CTOR_DTOR = /^(C[1-5]|D[0-5])/;
/** Itanium's abbreviations of std:: names (Sa, Sb, Ss, Si, So, Sd), as c++filt spells them. */
const STD_ABBREVIATIONS: Record<string, string[]> = {
  a: ['std', 'allocator'], b: ['std', 'basic_string'], s: ['std', 'string'],
  i: ['std', 'istream'], o: ['std', 'ostream'], d: ['std', 'iostream'],
};
const OPERATORS: Record<string, string> = {
  nw: 'new', na: 'new[]', dl: 'delete', da: 'delete[]', ps: '+', ng: '-', ad: '&', de: '*', co: '~', pl: '+', mi: '-',
  ml: '*', dv: '/', rm: '%', an: '&', or: '|', eo: '^', aS: '=', pL: '+=', mI: '-=', mL: '*=', dV: '/=', rM: '%=',
  aN: '&=', oR: '|=', eO: '^=', ls: '<<', rs: '>>', lS: '<<=', rS: '>>=', eq: '==', ne: '!=', lt: '<', gt: '>',
  le: '<=', ge: '>=', ss: '<=>', nt: '!', aa: '&&', oo: '||', pp: '++', mm: '--', cm: ',', pm: '->*', pt: '->',
  cl: '()', ix: '[]',
};

/**
 * Itanium C++: the qualified function name only (ns::Class::method), with
 * template arguments skipped, std:: for St, and constructors/destructors
 * named after their class. Enough to find a function by the name a user
 * types; parameter types (overloads) are not shown.
 */
function demangleItanium(s: string): string | undefined {
  let i = 0;
  const parts: string[] = [];
  const skipTemplateArgs = () => {
    // I ... E, balanced over the constructs that also end in E.
    let depth = 0;
    do {
      const c = s[i];
      if (c === undefined) throw new Error('unterminated template args');
      if (c >= '0' && c <= '9') {
        let j = i;
        while (s[j] >= '0' && s[j] <= '9') j++;
        i = j + Number(s.slice(i, j));
        continue;
      }
      if (c === 'I' || c === 'N' || c === 'L' || c === 'X' || (c === 'J')) depth++;
      else if (c === 'E') depth--;
      i++;
    } while (depth > 0);
  };
  const unqualified = (): boolean => {
    const c = s[i];
    if (c >= '0' && c <= '9') {
      const r = parseSourceNames(s, i)!;
      // one source name at a time
      let j = i;
      while (s[j] >= '0' && s[j] <= '9') j++;
      const len = Number(s.slice(i, j));
      parts.push(s.slice(j, j + len));
      i = j + len;
      void r;
      return true;
    }
    const m = CTOR_DTOR.exec(s.slice(i));
    if (m) {
      const cls = parts.at(-1) ?? '';
      parts.push(m[1][0] === 'D' ? `~${cls}` : cls);
      i += 2;
      return true;
    }
    if (c === 'L') { i++; return unqualified(); } // internal linkage
    const op = OPERATORS[s.slice(i, i + 2)];
    if (op) { parts.push(`operator${op}`); i += 2; return true; }
    return false;
  };
  if (s[i] === 'N') {
    i++;
    while ('rVKRO'.includes(s[i])) i++; // cv- and ref-qualifiers of a method
    while (i < s.length && s[i] !== 'E') {
      if (s.startsWith('St', i)) { parts.push('std'); i += 2; continue; }
      if (s[i] === 'S' && STD_ABBREVIATIONS[s[i + 1]]) { parts.push(...STD_ABBREVIATIONS[s[i + 1]]); i += 2; continue; }
      if (s[i] === 'S') { // substitution: a prefix seen before; approximate as nothing
        const end = s.indexOf('_', i);
        if (end < 0) return undefined; // malformed: never loop past the end
        i = end + 1;
        continue;
      }
      if (s[i] === 'I') { skipTemplateArgs(); continue; }
      if (s[i] === 'B') { i++; unqualified(); parts.pop(); continue; } // ABI tag
      if (!unqualified()) return undefined;
    }
    return parts.join('::');
  }
  if (s.startsWith('St', i)) { parts.push('std'); i += 2; }
  if (s[i] === 'Z') return undefined; // local entities: not needed
  if (!unqualified()) return undefined;
  return parts.join('::');
}

/** Strip what a user may add that symbol names do not carry: '(...)', a leading '::'. */
export function normalizeFunctionQuery(query: string): string {
  return query.trim().replace(/\(.*\)\s*(const)?$/, '').replace(/^::/, '');
}
