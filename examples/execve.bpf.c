// SPDX-License-Identifier: GPL-2.0
/* execve: every execve() with its file name, parent and command name (the
 * RbBCC talk's first program). Two ways in, one event:
 *   kp_execve  a kprobe on the execve syscall (ksyscall: libbpf finds the
 *              arch's wrapper, __x64_sys_execve or __arm64_sys_execve);
 *   tp_execve  the syscalls:sys_enter_execve tracepoint, where kprobes are
 *              compiled out (CONFIG_KPROBES=n) or not allowed. */
#include "rbtrace.bpf.h"

struct exec_event {
	__u32 pid;
	__u32 ppid;
	char comm[16];
	char filename[256];
};
RBTRACE_EXPORT_TYPE(struct exec_event, exec_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int emit(const char *filename)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!rbtrace_wanted(tgid))
		return 0;
	struct exec_event *e = rbtrace_reserve(&events, sizeof(*e));
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->pid = tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("ksyscall/execve")
int BPF_KSYSCALL(kp_execve, const char *filename)
{
	return emit(filename);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_execve(struct trace_event_raw_sys_enter *ctx)
{
	return emit((const char *)ctx->args[0]);
}
