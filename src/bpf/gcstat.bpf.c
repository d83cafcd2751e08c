// SPDX-License-Identifier: GPL-2.0
/* gcstat: Ruby GC phase durations from the USDT probes of libruby
 * (ruby:gc__mark__begin/end, ruby:gc__sweep__begin/end; a ruby built with
 * --enable-dtrace). The probes are guarded by semaphores, which libbpf's
 * USDT attach raises through the kernel's uprobe ref counter, so Ruby only
 * pays for them while we are attached.
 *
 * Attach path: usdt only (user-space probes). A begin stores the time per
 * thread and phase; the end adds the duration to per-process stats (drained
 * every interval) and to a log2 histogram per phase (printed at exit).
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include <bpf/usdt.bpf.h>
#include "gcstat.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* tid << 1 | phase */
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gc_key);
	__type(value, struct gc_stat);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GC_PHASES);
	__type(key, __u32);
	__type(value, struct gc_hist);
} hists SEC(".maps");

static __always_inline int phase_begin(__u32 phase)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = ((__u64)(__u32)id << 1) | phase;
	__u64 ts;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &key, &ts, BPF_ANY);
	return 0;
}

static __always_inline int phase_end(__u32 phase)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = ((__u64)(__u32)id << 1) | phase;
	struct gc_key sk = { .pid = id >> 32, .phase = phase };
	struct gc_stat *st, zero = {};
	struct gc_hist *h;
	__u64 *start, delta, slot;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	start = bpf_map_lookup_elem(&starts, &key);
	if (!start)
		return 0; /* began before we attached */
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &key);

	st = bpf_map_lookup_elem(&stats, &sk);
	if (!st) {
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&stats, &sk, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats, &sk);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->total_ns, delta);
	if (delta > st->max_ns)
		st->max_ns = delta; /* racy only between threads of one process, which Ruby's GVL serialises */

	h = bpf_map_lookup_elem(&hists, &phase);
	if (h) {
		slot = log2l(delta / 1000); /* usecs: GC phases take µs to ms */
		if (slot >= GCSTAT_SLOTS)
			slot = GCSTAT_SLOTS - 1;
		h->slots[slot]++;
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_mark_begin)
{
	return phase_begin(GC_MARK);
}

SEC("usdt")
int BPF_USDT(gc_mark_end)
{
	return phase_end(GC_MARK);
}

SEC("usdt")
int BPF_USDT(gc_sweep_begin)
{
	return phase_begin(GC_SWEEP);
}

SEC("usdt")
int BPF_USDT(gc_sweep_end)
{
	return phase_end(GC_SWEEP);
}
