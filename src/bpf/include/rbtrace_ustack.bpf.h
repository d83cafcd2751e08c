/* User-stack capture for unwinding in user space (perf's --call-graph dwarf
 * approach; src/core/unwind/ walks the copy with each module's .eh_frame):
 * the task's user registers and a bounded copy of its stack from sp up, into
 * a record the caller reserved. Used by rbstack.bpf.c (profile --unwind
 * dwarf) and strlat.bpf.c (--stack --unwind dwarf). Include after
 * rbtrace.bpf.h. */
#ifndef RBTRACE_USTACK_BPF_H
#define RBTRACE_USTACK_BPF_H

#include "rbtrace_ustack.h"

/* The user registers, saved at kernel entry: a perf sample may have hit the
 * kernel, where the perf event's own registers are the kernel's.
 * bpf_task_pt_regs is 5.15+ (and bpf_get_current_task_btf 5.11+); before,
 * the address is computed as the kernel's task_pt_regs does on x86-64 and
 * arm64: the pt_regs at the top of the task's kernel stack, THREAD_SIZE
 * bytes from task->stack (x86-64 has no TOP_OF_KERNEL_STACK_PADDING). The
 * helper's existence is a CO-RE check (the kernel's enum bpf_func_id), so
 * libbpf makes the branch a constant and the verifier never sees the call an
 * older kernel lacks. (A uprobe's ctx already is the user registers.) */
#define RBTRACE_THREAD_SIZE 16384 /* 4 KiB pages, no KASAN: Debian's x86-64 and arm64 kernels */
static __always_inline struct pt_regs *rbtrace_task_user_regs(struct task_struct *task)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	return (struct pt_regs *)((__u64)BPF_CORE_READ(task, stack) + RBTRACE_THREAD_SIZE -
				  bpf_core_type_size(struct pt_regs));
}

/* The return-address register at the sample: arm64's link register x30
 * (a leaf function, or any function before its prologue has stored x30,
 * has its return address there only); 0 on x86-64, where a call pushes the
 * return address on the stack. A CO-RE read: `regs` may be a uprobe's ctx,
 * a BTF pointer (bpf_task_pt_regs) or a computed address (before 5.15). */
static __always_inline __u64 rbtrace_user_lr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_arm64)
	return PT_REGS_RET_CORE(regs); /* regs[30] (bpf_tracing.h's __PT_RET_REG) */
#else
	return 0;
#endif
}

/* Copy the user stack from `sp` up into `stack` (a record's
 * stack[RBTRACE_USTACK_BYTES + RBTRACE_USTACK_PAGE]): a page at a time, up to
 * the first page that cannot be read (the end of the stack), at most
 * RBTRACE_USTACK_BYTES. bpf_find_vma would give the end, but it answers
 * -EBUSY whenever the mmap lock is taken (measured: most samples of a ruby
 * with two threads). Returns the bytes copied; *fault is set when not even
 * the first page could be read. */
static __always_inline __u32 rbtrace_copy_user_stack(__u8 *stack, __u64 sp, bool *fault)
{
	__u64 addr = sp, off = 0;

	*fault = false;
	for (int i = 0; i <= RBTRACE_USTACK_BYTES / RBTRACE_USTACK_PAGE; i++) {
		__u64 chunk = RBTRACE_USTACK_PAGE - (addr & (RBTRACE_USTACK_PAGE - 1));

		if (off >= RBTRACE_USTACK_BYTES)
			break;
		if (chunk > RBTRACE_USTACK_BYTES - off)
			chunk = RBTRACE_USTACK_BYTES - off;
		/* clang drops the test below (chunk <= RBTRACE_USTACK_PAGE already),
		 * but 6.1's verifier does not narrow chunk from its comparison with
		 * another register (6.18's does): it took chunk for up to 16 KiB past
		 * stack[] and refused the program ("R1 max value is outside of the
		 * allowed memory range", EACCES). */
		barrier_var(chunk);
		if (chunk == 0 || chunk > RBTRACE_USTACK_PAGE)
			break;
		if (bpf_probe_read_user(stack + (off & (RBTRACE_USTACK_BYTES - 1)), chunk, (void *)addr)) {
			if (off == 0)
				*fault = true;
			break;
		}
		off += chunk;
		addr += chunk;
	}
	return off;
}

#endif /* RBTRACE_USTACK_BPF_H */
