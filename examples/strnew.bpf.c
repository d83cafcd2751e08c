// SPDX-License-Identifier: GPL-2.0
/* strnew: latency of Ruby's rb_str_new(ptr, len) as a log2 histogram (the
 * talk's uprobe/uretprobe pair on libruby). The entry stores a start time
 * per thread, the return adds the elapsed time to its log2 slot. */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"

#define STRNEW_SLOTS 64

const volatile __s64 targ_len = -1;	/* --len: only calls with this length */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRNEW_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hist SEC(".maps");

SEC("uprobe") /* BPF_KPROBE reads the arguments of a uprobe too */
int BPF_KPROBE(str_new_enter, const char *ptr, long len)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	if (targ_len >= 0 && len != targ_len)
		return 0;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(str_new_return)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 *start = bpf_map_lookup_elem(&starts, &tid);

	if (!start)
		return 0;
	__u32 slot = log2l(bpf_ktime_get_ns() - *start);
	bpf_map_delete_elem(&starts, &tid);
	if (slot >= STRNEW_SLOTS)
		slot = STRNEW_SLOTS - 1;
	__u64 *count = bpf_map_lookup_elem(&hist, &slot);
	if (count)
		*count += 1;	/* per-CPU: no atomic needed */
	return 0;
}
