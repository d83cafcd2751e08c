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

export class KernelSymbols {
  private readonly addrs: BigUint64Array;
  private readonly names: string[];
  private readonly modules: (string | undefined)[];
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
    const rows: { addr: bigint; name: string; module?: string }[] = [];
    let zeros = 0;
    for (const line of src.split('\n')) {
      // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[mod]"
      const sp1 = line.indexOf(' ');
      if (sp1 <= 0) continue;
      const type = line[sp1 + 1];
      // Functions (text) only: data symbols would name a frame after a variable.
      if (type !== 't' && type !== 'T' && type !== 'W' && type !== 'w') continue;
      const addr = BigInt(`0x${line.slice(0, sp1)}`);
      if (addr === 0n) { zeros++; continue; }
      const rest = line.slice(sp1 + 3);
      const tab = rest.indexOf('\t');
      rows.push(tab < 0 ? { addr, name: rest } : { addr, name: rest.slice(0, tab), module: rest.slice(tab + 1).replace(/^\[|\]$/g, '') });
    }
    if (rows.length === 0 && !this.unavailable) {
      this.unavailable = zeros
        ? '/proc/kallsyms shows no addresses (kernel.kptr_restrict hides them: run as root, or sysctl kernel.kptr_restrict=0)'
        : '/proc/kallsyms lists no functions';
    }
    rows.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    this.addrs = new BigUint64Array(rows.length);
    this.names = new Array(rows.length);
    this.modules = new Array(rows.length);
    rows.forEach((r, i) => {
      this.addrs[i] = r.addr;
      this.names[i] = r.name;
      this.modules[i] = r.module;
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
    const a = this.addrs;
    let lo = 0;
    let hi = a.length - 1;
    if (hi < 0 || addr < a[0]) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    return { name: this.names[lo], module: this.modules[lo], offset: addr - a[lo] };
  }
}
