// Kernel frames: /proc/kallsyms, read once, sorted, searched by address.
//
// kptr_restrict: with kernel.kptr_restrict=2, or =1 without CAP_SYSLOG, every
// address reads as 0. Then there is nothing to resolve against, and kernel
// frames are shown as "[kernel]" (KernelSymbols.available is false, and the
// reason is kept for the tool to say once).
import { readFileSync } from 'node:fs';

export interface KernelSymbol {
  name: string;
  /** [module] for a loadable module's symbol, else undefined. */
  module?: string;
  /** Distance from the symbol's start. */
  offset: bigint;
}

/**
 * Kernel addresses are 64-bit, but all kernel text shares its top 16 bits
 * (0xffff on x86_64 and arm64): the low 48 bits, as doubles, sort and
 * compare exactly and far faster than BigInts (a kernel has ~150,000
 * functions, read in ~0.1 s this way instead of ~1.5 s).
 */
const LOW48 = 0xffffffffffffn;

export class KernelSymbols {
  private readonly addrs: Float64Array;
  private readonly names: string[];
  private readonly modules: (string | undefined)[];
  private prefix = '';
  /** Why kernel frames cannot be named (undefined when they can). */
  readonly unavailable?: string;

  constructor(text?: string) {
    let src = text;
    if (src === undefined) {
      try {
        src = readFileSync('/proc/kallsyms', 'utf8');
      } catch (err) {
        src = '';
        this.unavailable = `cannot read /proc/kallsyms: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      }
    }
    const addrs: number[] = [];
    const names: string[] = [];
    const modules: (string | undefined)[] = [];
    let zeros = 0;
    let sorted = true;
    for (let at = 0; at < src.length;) {
      let end = src.indexOf('\n', at);
      if (end < 0) end = src.length;
      // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[mod]"
      const sp1 = src.indexOf(' ', at);
      const line = at;
      at = end + 1;
      if (sp1 <= line || sp1 + 3 > end) continue;
      const type = src[sp1 + 1];
      // Functions (text) only: data symbols would name a frame after a variable.
      if (type !== 't' && type !== 'T' && type !== 'W' && type !== 'w') continue;
      const hex = src.slice(line, sp1);
      if (hex.length !== 16) continue;
      const prefix = hex.slice(0, 4);
      const low = parseInt(hex.slice(4), 16);
      if (low === 0 && /^0+$/.test(prefix)) { zeros++; continue; }
      if (!this.prefix) this.prefix = prefix;
      else if (prefix !== this.prefix) continue; // not kernel text
      const rest = src.slice(sp1 + 3, end);
      const tab = rest.indexOf('\t');
      if (addrs.length && low < addrs[addrs.length - 1]) sorted = false;
      addrs.push(low);
      names.push(tab < 0 ? rest : rest.slice(0, tab));
      modules.push(tab < 0 ? undefined : rest.slice(tab + 1).replace(/^\[|\]$/g, ''));
    }
    if (addrs.length === 0 && !this.unavailable) {
      this.unavailable = zeros
        ? '/proc/kallsyms shows no addresses (kernel.kptr_restrict hides them: run as root, or sysctl kernel.kptr_restrict=0)'
        : '/proc/kallsyms lists no functions';
    }
    // The file is sorted but for modules (and a few sections): sort only when it is not.
    const order = Array.from(addrs.keys());
    if (!sorted) order.sort((a, b) => addrs[a] - addrs[b]);
    this.addrs = new Float64Array(order.length);
    this.names = new Array(order.length);
    this.modules = new Array(order.length);
    order.forEach((from, i) => {
      this.addrs[i] = addrs[from];
      this.names[i] = names[from];
      this.modules[i] = modules[from];
    });
  }

  get available(): boolean {
    return this.addrs.length > 0;
  }

  get size(): number {
    return this.addrs.length;
  }

  /** The function holding `addr` (the last symbol at or below it), or undefined. */
  lookup(addr: bigint): KernelSymbol | undefined {
    if ((addr >> 48n).toString(16) !== this.prefix) return undefined;
    const x = Number(addr & LOW48);
    const a = this.addrs;
    let lo = 0;
    let hi = a.length - 1;
    if (hi < 0 || x < a[0]) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid] <= x) lo = mid;
      else hi = mid - 1;
    }
    return { name: this.names[lo], module: this.modules[lo], offset: BigInt(x - a[lo]) };
  }
}
