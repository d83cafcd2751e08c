/* Part of syscount.bpf.c (included there, after on_enter/on_exit): the
 * fentry/fexit programs on the syscall dispatchers of x86_64 and arm64. */
/* ---- fentry path: x64_sys_call(const struct pt_regs *regs, unsigned int nr),
 * the target set at run time. It only exists on x86_64 (6.9+); the programs
 * compile everywhere and are simply never loaded elsewhere. ---- */
SEC("fentry")
int BPF_PROG(fe_enter, const struct pt_regs *regs, unsigned int nr)
{
	return on_enter(nr, START_TASK);
}

SEC("fexit")
int BPF_PROG(fe_exit, const struct pt_regs *regs, unsigned int nr, long ret)
{
	return on_exit(nr, ret, START_TASK);
}

/* ---- fentry path on arm64: invoke_syscall(struct pt_regs *regs, unsigned
 * int scno, unsigned int sc_nr, const syscall_fn_t table[]), the dispatcher
 * every arm64 syscall goes through (el0_svc_common). It returns nothing: the
 * result is in regs->regs[0] when it returns. AArch32 (compat) tasks come
 * through it too, with their own numbers and table: skipped, as x86's
 * x64_sys_call sees no ia32 syscall (the tracepoint paths count both). ---- */
#if defined(__TARGET_ARCH_arm64)
#define ARM64_TIF_32BIT 22 /* arch/arm64/include/asm/thread_info.h */

static __always_inline bool compat_task(void)
{
	return bpf_get_current_task_btf()->thread_info.flags & (1UL << ARM64_TIF_32BIT);
}

SEC("fentry")
int BPF_PROG(fa_enter, struct pt_regs *regs, unsigned int scno)
{
	return compat_task() ? 0 : on_enter(scno, START_TASK);
}

SEC("fexit")
int BPF_PROG(fa_exit, struct pt_regs *regs, unsigned int scno)
{
	return compat_task() ? 0 : on_exit(scno, (long)regs->regs[0], START_TASK);
}

SEC("fexit")
int BPF_PROG(fa_count, struct pt_regs *regs, unsigned int scno)
{
	return compat_task() ? 0 : on_exit(scno, (long)regs->regs[0], START_NONE);
}
#else
/* Elsewhere the same names exist as empty programs that are never loaded
 * (src/core/bpf/arch.ts picks fe_* on x86-64), so both architectures' objects
 * have one typed skeleton (build-bpf.sh checks they are identical). */
SEC("fentry")
int BPF_PROG(fa_enter, struct pt_regs *regs, unsigned int scno) { return 0; }

SEC("fexit")
int BPF_PROG(fa_exit, struct pt_regs *regs, unsigned int scno) { return 0; }

SEC("fexit")
int BPF_PROG(fa_count, struct pt_regs *regs, unsigned int scno) { return 0; }
#endif
