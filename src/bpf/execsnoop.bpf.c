// SPDX-License-Identifier: GPL-2.0
/* execsnoop: every execve()/execveat(), with its arguments and result.
 *
 * Attach paths, chosen at run time by src/tools/execsnoop/probe.ts:
 *   sched      raw_tp/sched_process_exec: successful execs only, one record
 *              each, argv read from the new image's stack. Cheapest: fires
 *              once per exec, needs no tracefs, detaches instantly. The
 *              default unless failed execs are wanted (-x).
 *   fentry     fentry/fexit on the arch's syscall entry points (target set
 *              at run time, e.g. __x64_sys_execve);
 *   kprobe     ksyscall/kretsyscall (libbpf resolves the arch prefix);
 *   tracepoint syscalls:sys_{enter,exit}_execve{,at}.
 * fentry and kprobe avoid the syscalls:* tracepoints, whose use puts every
 * task on the slower syscall-tracing path (and whose detach waits for an RCU
 * tasks-trace grace period, ~100 ms each).
 *
 * The syscall paths send two records per exec: ENTER (argv, read while the
 * old image's memory still exists) and EXIT (result, comm of the new image).
 * User space pairs them by thread id.
 */
#include "rbtrace.bpf.h"
#include "execsnoop.h"

const volatile __u32 max_args = 64;
const volatile __s64 targ_uid = -1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024); /* RSS: user space maps it twice */
} events SEC(".maps");

/* Scratch space: an exec_event is ~33 KiB, far beyond the 512-byte stack
 * and above the 32 KiB a per-CPU value may have. So: a plain array with one
 * slot per CPU (user space sets max_entries to the number of possible CPUs),
 * indexed by the current CPU; tracing programs cannot migrate mid-run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

RBTRACE_EXPORT_TYPE(struct exec_event, exec_event);

static __always_inline bool wanted(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	/* -- CMD: the command's own exec is made while its pid is still the
	 * gate's (pending): it is the first exec to show. */
	if (!rbtrace_wanted(tgid) && !rbtrace_follow_pending(tgid))
		return false;
	if (targ_uid >= 0 && (__u32)bpf_get_current_uid_gid() != (__u32)targ_uid)
		return false;
	return true;
}

static __always_inline void fill_header(struct exec_event *e, __u32 kind)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	e->ts_ns = bpf_ktime_get_ns();
	/* At the event, so a process gone before the report still has its cgroup. */
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->kind = kind;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
}

#define HEADER_SIZE (__builtin_offsetof(struct exec_event, filename))
#define ARRAYS_OFFSET (__builtin_offsetof(struct exec_event, args))

static __always_inline int on_enter(const char *filename, const char *const *argv)
{
	struct exec_event *e;
	__u32 cpu = bpf_get_smp_processor_id();
	int i;

	if (!wanted())
		return 0;
	e = bpf_map_lookup_elem(&scratch, &cpu);
	if (!e)
		return 0;
	fill_header(e, EXEC_ENTER);
	e->retval = 0;
	e->flags = 0;
	e->args_count = 0;
	bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);
	__builtin_memset(e->arg_cut, 0, sizeof(e->arg_cut));

	/* Argument i goes to the fixed slot args[i * ARGSIZE]: constant bounds
	 * per iteration keep the verifier's work linear in MAX_ARGS. */
	for (i = 0; i < EXECSNOOP_MAX_ARGS; i++) {
		const char *argp = NULL;
		char *slot = &e->args[i * EXECSNOOP_ARGSIZE];
		long len;

		bpf_probe_read_user(&argp, sizeof(argp), &argv[i]);
		if (!argp)
			break;
		if (i >= max_args) {
			e->flags |= EXEC_MORE_ARGS;
			break;
		}
		/* bpf_probe_read_user_str keeps ARGSIZE-1 bytes and a NUL. When
		 * it filled up, peek at bytes ARGSIZE-1 and ARGSIZE: keep ARGSIZE
		 * bytes, and call it cut only if there is more after them. */
		len = bpf_probe_read_user_str(slot, EXECSNOOP_ARGSIZE, argp);
		if (len < 0)
			break;
		/* Without the NUL. Kernels before 6.2 (or so) return 0, not 1,
		 * for an empty string: found by the kernel matrix on 6.1. */
		len = len > 0 ? len - 1 : 0;
		if (len == EXECSNOOP_ARGSIZE - 1) {
			char tail[2] = {};
			bpf_probe_read_user(tail, 2, argp + EXECSNOOP_ARGSIZE - 1);
			if (tail[0] != 0) {
				bpf_probe_read_user(slot, EXECSNOOP_ARGSIZE, argp);
				len = EXECSNOOP_ARGSIZE;
				if (tail[1] != 0)
					e->arg_cut[i / 8] |= 1 << (i % 8);
			}
		}
		e->arg_len[i] = len;
		e->args_count = i + 1;
	}
	/* The loop stops at the array's end: with max_args == MAX_ARGS an
	 * argument past it is seen only here. */
	if (i == EXECSNOOP_MAX_ARGS) {
		const char *argp = NULL;

		bpf_probe_read_user(&argp, sizeof(argp), &argv[i]);
		if (argp)
			e->flags |= EXEC_MORE_ARGS;
	}
	e->args_size = e->args_count * EXECSNOOP_ARGSIZE;

	__u64 size = ARRAYS_OFFSET + (__u64)e->args_count * EXECSNOOP_ARGSIZE;
	if (size > sizeof(*e))
		size = sizeof(*e);
	rbtrace_output(&events, e, size);
	return 0;
}

static __always_inline int on_exit(long ret)
{
	struct exec_event *e;
	__u32 cpu = bpf_get_smp_processor_id();

	if (!wanted())
		return 0;
	e = bpf_map_lookup_elem(&scratch, &cpu);
	if (!e)
		return 0;
	fill_header(e, EXEC_EXIT);
	e->retval = ret;
	e->args_count = 0;
	e->args_size = 0;
	e->flags = 0;
	rbtrace_output(&events, e, HEADER_SIZE);
	return 0;
}

/* ---- sched path: one record per successful exec ---- */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_event *e;
	__u32 cpu = bpf_get_smp_processor_id();
	unsigned long arg_start, arg_end;
	__u64 len;

	if (!wanted())
		return 0;
	e = bpf_map_lookup_elem(&scratch, &cpu);
	if (!e)
		return 0;
	fill_header(e, EXEC_DONE);
	e->retval = 0;
	e->flags = EXEC_ARGS_RAW;
	e->args_count = 0;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	/* What the new image's argv is not: the argv passed. An interpreter
	 * (#! script, binfmt_misc) replaced argv[0] with its own name, optional
	 * argument and the script's path; bprm->interp then no longer points at
	 * bprm->filename. An exec by descriptor (fexecve, execveat) has a
	 * filename the kernel made up: bprm->fdpath, "/dev/fd/N[/PATH]". */
	e->interp[0] = 0;
	if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename)) {
		e->flags |= EXEC_INTERP;
		bpf_probe_read_kernel_str(e->interp, sizeof(e->interp), BPF_CORE_READ(bprm, interp));
	}
	if (BPF_CORE_READ(bprm, fdpath))
		e->flags |= EXEC_BY_FD;

	/* The kernel has just copied argv (NUL-separated) to the new stack. */
	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end - arg_start;
	if (len > EXECSNOOP_ARGS_BUF) {
		len = EXECSNOOP_ARGS_BUF;
		e->flags |= EXEC_MORE_ARGS;
	}
	if (bpf_probe_read_user(e->args, len, (void *)arg_start))
		len = 0;
	e->args_size = len;

	__u64 size = ARRAYS_OFFSET + len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	rbtrace_output(&events, e, size);
	return 0;
}

/* ---- tracepoint path ---- */
SEC("tracepoint/syscalls/sys_enter_execve")
int tp_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int tp_enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int tp_exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

/* ---- kprobe path ----
 * ksyscall/ lets libbpf pick the arch's entry point name. We read the
 * arguments from the user pt_regs the wrapper receives, as the fentry path
 * does, rather than with BPF_KSYSCALL: that macro's LINUX_HAS_SYSCALL_WRAPPER
 * extern makes libbpf load the kernel's whole BTF for every path of this
 * object. Every kernel rbtrace runs on (5.x with BTF) has syscall wrappers on
 * x86_64 and arm64. */
SEC("ksyscall/execve")
int BPF_KPROBE(kp_enter_execve, struct pt_regs *regs)
{
	return on_enter((const char *)PT_REGS_PARM1_CORE_SYSCALL(regs),
			(const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs));
}

SEC("ksyscall/execveat")
int BPF_KPROBE(kp_enter_execveat, struct pt_regs *regs)
{
	return on_enter((const char *)PT_REGS_PARM2_CORE_SYSCALL(regs),
			(const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs));
}

SEC("kretsyscall/execve")
int BPF_KRETPROBE(kp_exit_execve, long ret)
{
	return on_exit(ret);
}

SEC("kretsyscall/execveat")
int BPF_KRETPROBE(kp_exit_execveat, long ret)
{
	return on_exit(ret);
}

/* ---- fentry path: targets (__x64_sys_execve, ...) are set at run time.
 * The syscall wrappers take the user's registers as a struct pt_regs. ---- */
SEC("fentry")
int BPF_PROG(fe_enter_execve, struct pt_regs *regs)
{
	return on_enter((const char *)PT_REGS_PARM1_CORE_SYSCALL(regs),
			(const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs));
}

SEC("fentry")
int BPF_PROG(fe_enter_execveat, struct pt_regs *regs)
{
	return on_enter((const char *)PT_REGS_PARM2_CORE_SYSCALL(regs),
			(const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs));
}

SEC("fexit")
int BPF_PROG(fe_exit_execve, struct pt_regs *regs, long ret)
{
	return on_exit(ret);
}

SEC("fexit")
int BPF_PROG(fe_exit_execveat, struct pt_regs *regs, long ret)
{
	return on_exit(ret);
}
