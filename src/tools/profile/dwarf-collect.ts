// profile --unwind dwarf's readings: the only code that reads
// src/bpf/rbstack.bpf.c's ring buffers and map. Each sample's stack copy is
// unwound at once (src/core/unwind/unwinder.ts: the copy is gone after the
// callback), its Ruby control frames named at once (src/core/unwind/ruby.ts:
// the VM moves on), counted by (process, comm, kernel stack, native pcs, Ruby
// frames); native frames are symbolized once per distinct stack, at the end,
// and the result is the frame-pointer path's Profile, so every view reads it.
import type { BpfObject } from '../../core/bpf/object.js';
import { readPerCpuCounter } from '../../core/bpf/maps.js';
import { exePath } from '../../core/linux/procfiles.js';
import { StackMap, Symbolizer, readRegions, type Frame } from '../../core/stacks/index.js';
import type { Unwound } from '../../core/unwind/unwinder.js';
import { RecordUnwinder } from '../../core/unwind/record.js';
import { bpfRubyValue, findRuby, RubyMemory, unreachableRuby, type RubyLayout } from '../../core/unwind/ruby.js';
import { qualifyLabel, RubyNames } from '../../core/unwind/ruby-names.js';
import { GC_MARKING, GC_SWEEPING, RUBY_CFUNC, splice } from '../../core/unwind/splice.js';
import { rbstack_ruby_frame_layout, rbstack_sample_layout, ENUMS, type SKELETON } from '../../generated/rbstack.js';
import { mergeStacks, type CountedStack, type Profile } from './collect.js';

interface RubyProc {
  mem: RubyMemory;
  names?: RubyNames;
}

interface Counted {
  comm: string;
  pid: number;
  kernelStack: number;
  pcs: number[];
  unwound: Unwound['end'];
  ruby: Frame[];
  count: number;
}

export interface SamplerStats {
  samples: number;
  /** Samples whose stack walk reached the outermost frame (the CFI says so, or a zero return address). */
  complete: number;
  /** Samples of a ruby process whose Ruby frames were read. */
  ruby: number;
  /** Stack bytes copied, summed. */
  stackBytes: number;
  /** Time spent unwinding and naming Ruby frames, ms. */
  cpuMs: number;
}

const RUBY_RECHECK_MS = 500;

const RUBY_FRAME_SIZE = rbstack_ruby_frame_layout.size;
const RUBY_AT = rbstack_sample_layout.fields.ruby.offset;

export class DwarfCollector {
  readonly sym: Symbolizer;
  private readonly unwinder: RecordUnwinder;
  private readonly counts = new Map<string, Counted>();
  private readonly rubies = new Map<number, RubyProc | null>();
  /** pid -> when a look found no libruby, and the executable it was running then. */
  private readonly notRuby = new Map<number, { at: number; exe: string }>();
  readonly stats: SamplerStats = { samples: 0, complete: 0, ruby: 0, stackBytes: 0, cpuMs: 0 };

  private readonly userOnly: boolean;

  /** `userOnly`: kernel frames left out (--user-only). */
  constructor(private readonly obj: BpfObject<typeof SKELETON>, opts: { sym?: Symbolizer; warn?: (msg: string) => void; userOnly?: boolean } = {}) {
    this.sym = opts.sym ?? new Symbolizer();
    this.userOnly = Boolean(opts.userOnly);
    this.unwinder = new RecordUnwinder(this.sym);
    this.warn = opts.warn ?? (() => undefined);
  }

  private readonly warn: (msg: string) => void;
  private readonly warned = new Set<string>();

  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(msg);
  }

  /**
   * A new_pids record (a bare u32 tgid in rbstack.bpf.c, no struct to decode):
   * a process's first sample.
   */
  onNewPid(record: DataView): void {
    this.notePid(record.getUint32(0, true));
  }

  /**
   * A process known before its first sample (-p): noted at once, so a ruby's
   * first samples have Ruby frames too (else those taken before the first one
   * reaches user space have native frames only).
   */
  watch(pid: number): void {
    this.notePid(pid);
  }

  /** A process seen for the first time: snapshot its mappings; a ruby gets its VM's address into the BPF map. */
  private notePid(pid: number): void {
    // A second look is a process first seen before its image was ruby's (`-- CMD` through
    // exec'ing launchers: unshare, chroot): the symbolizer's snapshot of its mappings is
    // that earlier image's, so it is taken again (else its addresses find no mapping until
    // the symbolizer's next re-read, up to a second later).
    this.sym.notePid(pid, this.notRuby.has(pid));
    if (this.rubies.has(pid)) return;
    const regions = readRegions(pid);
    if (!regions) return; // unreadable (the process is in its execve, or gone): the next sample tries again
    const ruby = findRuby(pid, regions);
    if (!ruby) {
      // A process sampled before its dynamic loader mapped libruby (`-- ruby`, right after
      // execve) is looked at once more, a little later; again while it keeps exec'ing
      // another program (launchers before the ruby: unshare, sh, chroot, on a loaded
      // machine each can outlast the wait).
      const exe = exePath(pid) ?? '';
      const before = this.notRuby.get(pid);
      if (!before || before.exe !== exe) this.notRuby.set(pid, { at: Date.now(), exe });
      else this.rubies.set(pid, null);
      return;
    }
    if (!ruby.layout) {
      this.warnOnce(ruby.version, `ruby ${ruby.version} (${ruby.module}): no struct layout known for this version, so only its native frames are shown`);
      this.rubies.set(pid, null);
      return;
    }
    const unreachable = unreachableRuby({ ...ruby, layout: ruby.layout });
    if (unreachable) {
      this.warnOnce(`vm:${ruby.module}`, unreachable);
      this.rubies.set(pid, null);
      return;
    }
    this.obj.typedMap('ruby_procs').update({ value: pid }, bpfRubyValue({ ...ruby, layout: ruby.layout }));
    const mem = new RubyMemory(pid, ruby.layout as RubyLayout);
    const nl = ruby.layout.names;
    if (nl && !ruby.globalSymbols) this.warnOnce('symbols', `ruby ${ruby.version} (${ruby.module}): its symbol table was not found, so C methods are not shown and methods have no class`);
    this.rubies.set(pid, { mem, names: nl && ruby.globalSymbols ? new RubyNames(mem, nl, ruby.globalSymbols) : undefined });
  }

  /** One ring-buffer record of `samples`. */
  onSample(rec: DataView): void {
    const t0 = performance.now();
    const L = rbstack_sample_layout;
    const pid = L.read(rec, 'tgid');
    const flags = L.read(rec, 'flags');
    const len = L.read(rec, 'stack_len');
    const comm = L.decode(new DataView(rec.buffer, rec.byteOffset, L.fields.ruby.offset)).comm ?? '';
    this.stats.samples++;
    this.stats.stackBytes += len;
    if (!this.rubies.has(pid) && Date.now() - (this.notRuby.get(pid)?.at ?? 0) >= RUBY_RECHECK_MS) this.notePid(pid);
    const unwound = this.unwinder.unwind(pid, L, rec);
    if (unwound.end === 'end') this.stats.complete++;
    const rp = this.rubies.get(pid);
    const ruby = rp && flags & ENUMS.RBSTACK_F_RUBY ? this.rubyFrames(rec, flags, rp) : [];
    const kernelStack = L.read(rec, 'kernel_stack');
    const key = `${pid}\0${comm}\0${kernelStack}\0${unwound.pcs.join(',')}\0${ruby.map((f) => f.name).join('\0')}`;
    const had = this.counts.get(key);
    if (had) had.count++;
    else this.counts.set(key, { comm, pid, kernelStack, pcs: unwound.pcs, unwound: unwound.end, ruby, count: 1 });
    this.stats.cpuMs += performance.now() - t0;
  }

  /** A sample's Ruby frames, innermost first: a GC frame when the VM was collecting, C methods, Class#method labels. */
  private rubyFrames(rec: DataView, flags: number, rp: RubyProc): Frame[] {
    const L = rbstack_sample_layout;
    const out: Frame[] = [];
    this.stats.ruby++;
    if (flags & ENUMS.RBSTACK_F_GC_MARK) out.push(GC_MARKING);
    else if (flags & ENUMS.RBSTACK_F_GC_SWEEP) out.push(GC_SWEEPING);
    // Ruby's backtrace skips the outermost control frame (the thread's dummy frame; the main
    // thread's is the "<main>" of "ruby", vm_backtrace.c): so do we, when the walk reached it.
    const n = L.read(rec, 'ruby_frames') - (flags & ENUMS.RBSTACK_F_RUBY_CUT ? 0 : 1);
    for (let i = 0; i < n; i++) {
      const f = rbstack_ruby_frame_layout.decode(rec, RUBY_AT + i * RUBY_FRAME_SIZE);
      const m = f.me && rp.names ? rp.names.method(Number(f.me)) : undefined;
      if (!f.iseq) {
        // A C method (vm_backtrace.c: a cfunc frame is named by its method entry); the VM's
        // other frames without an iseq (dummy, ifunc) have none.
        if (m) out.push({ name: m.qualified, module: RUBY_CFUNC, addr: BigInt(f.me), kernel: false });
        continue;
      }
      if (!f.pc) continue; // a frame Ruby's own backtrace skips too (the VM's dummy top frame)
      const info = rp.mem.frame(Number(f.iseq), Number(f.pc));
      if (!info) continue;
      out.push({ name: `${qualifyLabel(info.label, m)} (${info.path}:${info.line})`, module: info.path, addr: BigInt(f.pc), kernel: false });
    }
    return out;
  }

  /** Every distinct stack, symbolized, Ruby frames spliced in where the interpreter ran. */
  private stacks(): CountedStack[] {
    const kernel = StackMap.of(this.obj);
    const out: CountedStack[] = [];
    for (const c of this.counts.values()) {
      const native = this.sym.symbolize(c.pid, c.pcs.map(BigInt), this.userOnly ? [] : kernel.addresses(c.kernelStack));
      const frames = c.ruby.length ? splice(native.frames, c.ruby) : native.frames;
      out.push({ comm: c.comm, pid: c.pid, count: c.count, truncated: c.unwound !== 'end', frames });
    }
    return out;
  }

  /** The run's profile, as ProfileCollector.read() gives it; the Ruby processes' memory is let go. */
  read(): Profile {
    const stacks = mergeStacks(this.stacks());
    for (const m of this.rubies.values()) m?.mem.close();
    return { ...stacks, stackErrors: StackMap.of(this.obj).errors(), dropped: readPerCpuCounter(this.obj.map('rbtrace_lost')),
      droppedWhy: 'their stack copies came faster than rbtrace unwound them; a lower -F keeps up' };
  }
}
