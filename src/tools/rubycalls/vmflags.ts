// Can ruby:method__entry fire in a process? Ruby fires it from its trace
// instructions, run only while a TracePoint for Ruby-level events is enabled
// (Ruby bug #14582). The VM keeps the events enabled now in
// ruby_vm_event_flags, and those its instruction sequences were ever
// compiled for in ruby_vm_event_enabled_global_flags: both exported, read
// here from the process's memory (/proc/PID/mem) at the library's load
// address.
import { openSync, readFileSync, readSync, closeSync, realpathSync } from 'node:fs';
import { ElfFile, stripVersion } from '../../core/elf/elf.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';

/** vm_core.h / ruby/internal/event.h */
const RUBY_EVENT_CALL = 0x0008;
const RUBY_EVENT_RETURN = 0x0010;

export interface VmEventFlags {
  /** ruby_vm_event_flags: events some hook wants now. */
  now: number;
  /** ruby_vm_event_enabled_global_flags: events the iseqs were compiled for. */
  ever: number;
  /** Ruby-method probes fire: a :call/:return TracePoint is on. */
  rubyProbesFire: boolean;
}

export class VmFlagsReader {
  private readonly now?: number;
  private readonly ever?: number;
  private readonly firstVaddr: number;
  private readonly path: string;

  constructor(binary: BinaryFile) {
    const elf = ElfFile.open(binary);
    const sym = (name: string) => elf.symbols().find((s) => s.shndx !== 0 && stripVersion(s.name) === name)?.value;
    this.now = sym('ruby_vm_event_flags');
    this.ever = sym('ruby_vm_event_enabled_global_flags');
    this.firstVaddr = 0;
    let path = binary.path;
    try {
      path = realpathSync(binary.path);
    } catch {
      // keep the name given
    }
    this.path = path;
  }

  /** The flags of process `pid`, or undefined (no symbols, gone, or not running this library). */
  read(pid: number): VmEventFlags | undefined {
    if (this.now === undefined || this.ever === undefined) return undefined;
    try {
      // The library's first mapping (file offset 0) is its load address: its first PT_LOAD has vaddr 0.
      const line = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
        .find((l) => l.endsWith(` ${this.path}`) && l.split(/\s+/)[2] === '00000000');
      if (!line) return undefined;
      const start = parseInt(line.split('-')[0], 16) - this.firstVaddr;
      const fd = openSync(`/proc/${pid}/mem`, 'r');
      try {
        const word = (vaddr: number) => {
          const b = Buffer.alloc(4);
          readSync(fd, b, 0, 4, start + vaddr);
          return b.readUInt32LE(0);
        };
        const now = word(this.now);
        const ever = word(this.ever);
        const mask = RUBY_EVENT_CALL | RUBY_EVENT_RETURN;
        return { now, ever, rubyProbesFire: (now & mask) !== 0 && (ever & mask) !== 0 };
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
  }
}
