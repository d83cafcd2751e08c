// Ruby frames in a native stack: the interpreter's own frames (libruby's, or
// a static ruby's) replaced by the Ruby frames it was running, and the frames
// that stand for the VM's state (a C method, the GC). Any tool that has both a
// native stack and a sample's Ruby frames splices them here.
import type { Frame } from '../stacks/index.js';

/** Module of C-method frames (they have no file:line: Ruby's backtrace gives them their caller's). */
export const RUBY_CFUNC = '[ruby cfunc]';
export const GC_MARKING: Frame = { name: '[gc: marking]', module: '[ruby gc]', addr: 0n, kernel: false };
export const GC_SWEEPING: Frame = { name: '[gc: sweeping]', module: '[ruby gc]', addr: 0n, kernel: false };

/** A native frame of the interpreter (libruby, or a static ruby binary). */
export const isRubyVmFrame = (f: Frame): boolean => !f.kernel && f.module !== undefined && /\/(libruby[-.][^/]*|ruby)$/.test(f.module);

/**
 * Ruby frames (innermost first) in place of the interpreter's native frames:
 * everything from the innermost to the outermost libruby frame is replaced,
 * so native code Ruby called (a C extension, libc) stays inside the Ruby
 * method that called it, and main/_start stay outside.
 */
export function splice(native: Frame[], ruby: Frame[], isVm: (f: Frame) => boolean = isRubyVmFrame): Frame[] {
  let inner = -1;
  let outer = -1;
  native.forEach((f, i) => {
    if (isVm(f)) {
      if (inner < 0) inner = i;
      outer = i;
    }
  });
  if (inner < 0) return [...ruby, ...native];
  return [...native.slice(0, inner), ...ruby, ...native.slice(outer + 1)];
}
