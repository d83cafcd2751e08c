// SPDX-License-Identifier: GPL-2.0
/* bench/syscount's floor: empty programs on the raw_syscalls tracepoints,
 * attached the way rbtrace syscount attaches here (tp_btf). What a run with
 * these costs over a plain run is the price of the tracepoint itself, which
 * no tool built on it can go below. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sys_enter")
int floor_enter(void *ctx)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int floor_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
