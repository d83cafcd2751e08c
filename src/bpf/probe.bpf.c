// SPDX-License-Identifier: GPL-2.0
/* Feature probes for `rbtrace doctor`: one trivial program per attach kind.
 * Each is loaded and attached on its own and detached at once; the kernel's
 * answer is the verdict (as libbpf-tools' fentry_can_attach does). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry")
int BPF_PROG(probe_fentry)
{
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(probe_kprobe)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(probe_raw_tp)
{
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(probe_tp_btf)
{
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(probe_uprobe)
{
	return 0;
}

SEC("iter/task")
int probe_iter(struct bpf_iter__task *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
