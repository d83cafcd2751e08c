// SPDX-License-Identifier: GPL-2.0
/* rawsys: an strace-like collector on the raw_syscalls tracepoints (the
 * talk's sys_enter/sys_exit program): one event per completed syscall, with
 * its number, six arguments, result and duration. Entry data waits in a hash
 * keyed by thread id until the same thread's exit. */
#include "rbtrace.bpf.h"

const volatile __u32 self_tgid = 0;

struct sys_event {
	__u32 pid;
	__u32 tid;
	__s64 nr;
	__s64 args[6];
	__s64 ret;
	__u64 duration_ns;
	char comm[16];
};
RBTRACE_EXPORT_TYPE(struct sys_event, sys_event);

struct entry {
	__u64 ts;
	__s64 nr;
	__s64 args[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct entry);
} entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = id;

	if (tgid == self_tgid || !rbtrace_wanted(tgid))
		return 0;
	/* Each argument read at its own constant offset: the verifier refuses a
	 * context pointer moved by a loop. */
	struct entry e = {
		.ts = bpf_ktime_get_ns(), .nr = ctx->id,
		.args = { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4], ctx->args[5] },
	};
	bpf_map_update_elem(&entries, &tid, &e, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	struct entry *start = bpf_map_lookup_elem(&entries, &tid);

	if (!start)
		return 0;
	struct sys_event *e = rbtrace_reserve(&events, sizeof(*e));
	if (e) {
		e->pid = id >> 32;
		e->tid = tid;
		e->nr = start->nr;
		for (int i = 0; i < 6; i++)
			e->args[i] = start->args[i];
		e->ret = ctx->ret;
		e->duration_ns = bpf_ktime_get_ns() - start->ts;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&entries, &tid);
	return 0;
}
