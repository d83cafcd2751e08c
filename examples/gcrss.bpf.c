// SPDX-License-Identifier: GPL-2.0
/* gcrss: Ruby garbage collections per process, from the ruby:gc__mark__begin
 * USDT probe (one per collection, minor or major), and their mark time from
 * gc__mark__end; user space adds each process's RSS every second (the talk's
 * GC tracer). */
#include "rbtrace.bpf.h"
#include <bpf/usdt.bpf.h>

struct gc_counts {
	__u64 gcs;
	__u64 mark_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* pid */
	__type(value, struct gc_counts);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* tid */
	__type(value, __u64);
} starts SEC(".maps");

SEC("usdt")
int BPF_USDT(gc_mark_begin)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = id;

	if (!rbtrace_wanted(tgid))
		return 0;
	struct gc_counts *c = bpf_map_lookup_elem(&counts, &tgid);
	if (c) {
		__sync_fetch_and_add(&c->gcs, 1);
	} else {
		struct gc_counts fresh = { .gcs = 1 };
		bpf_map_update_elem(&counts, &tgid, &fresh, BPF_NOEXIST);
	}
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_mark_end)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = id;
	__u64 *start = bpf_map_lookup_elem(&starts, &tid);

	if (!start)
		return 0;
	__u64 delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &tid);
	struct gc_counts *c = bpf_map_lookup_elem(&counts, &tgid);
	if (c)
		__sync_fetch_and_add(&c->mark_ns, delta);
	return 0;
}
