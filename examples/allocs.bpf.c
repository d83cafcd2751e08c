// SPDX-License-Identifier: GPL-2.0
/* allocs: malloc, free and realloc calls of a process (the talk's counters
 * on a Rust program, whose default allocator is libc's), with a log2
 * histogram of requested sizes per function. Uprobes on libc, attached by
 * allocs.ts to the libc the target maps. */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"

enum alloc_fn {
	FN_MALLOC = 0,
	FN_FREE = 1,
	FN_REALLOC = 2,
	FN_COUNT = 3,
};

#define SIZE_SLOTS 64

const volatile __u32 self_tgid = 0;

/* Per function: calls, bytes asked for, and a log2 histogram of sizes. */
struct fn_stats {
	__u64 calls;
	__u64 bytes;
	__u64 sizes[SIZE_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FN_COUNT);
	__type(key, __u32);
	__type(value, struct fn_stats);
} stats SEC(".maps");

static __always_inline int count(__u32 fn, __u64 size)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid == self_tgid || !rbtrace_wanted(tgid))
		return 0;
	struct fn_stats *s = bpf_map_lookup_elem(&stats, &fn);
	if (!s)
		return 0;
	s->calls += 1;		/* per-CPU: no atomics needed */
	s->bytes += size;
	__u32 slot = log2l(size);
	if (slot >= SIZE_SLOTS)
		slot = SIZE_SLOTS - 1;
	s->sizes[slot] += 1;
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_malloc, __u64 size)
{
	return count(FN_MALLOC, size);
}

SEC("uprobe")
int BPF_KPROBE(on_free, void *ptr)
{
	return count(FN_FREE, 0);
}

SEC("uprobe")
int BPF_KPROBE(on_realloc, void *ptr, __u64 size)
{
	return count(FN_REALLOC, size);
}
