// SPDX-License-Identifier: GPL-2.0
/* mallocstat: calls, requested bytes and latency of the allocator functions
 * (malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign) of libc or of another allocator.
 *
 * One attach path: uprobes (an allocator is user-space code; there is no
 * kernel hook for it). src/tools/mallocstat.ts attaches one entry program
 * per function at the symbol it resolved, and ms_return as a uretprobe on
 * every timed function (realloc and reallocarray always; all with -L).
 *
 * Nested calls. Allocators call their own entry points: in glibc 2.36
 * reallocarray calls realloc, realloc(NULL, n) calls malloc and realloc(p, 0)
 * calls free, all at the probed addresses. Counting those would report calls
 * the program never made, so a thread that is inside a timed function
 * (recorded in `active` by its entry probe) is not counted again until it
 * returns. That is why the realloc family is always timed: its return is
 * what ends the nesting. Uretprobes are attached before entry probes, so an
 * entry is never recorded without its return being watched.
 *
 * No recursion: BPF programs never call the allocator they watch.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "mallocstat.h"

const volatile bool per_process = false; /* -P: key by pid (else pid 0) */
const volatile __u32 self_tgid = 0;      /* rbtrace itself: never counted */
const volatile __u32 timed_mask = 0;     /* bit f: function f has a uretprobe */

/* Without -P: per-CPU arrays indexed by function and by size slot (an array
 * lookup is a bounds check and an add, cheaper than hashing: this runs on
 * every allocator call of the target). With -P: the same keyed by pid. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MS_NFUNCS);
	__type(key, __u32);
	__type(value, struct ms_stats);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MALLOCSTAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ms_key);
	__type(value, struct ms_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ms_hist_key);
	__type(value, __u64);
} hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* pid_tgid: one thread */
	__type(value, struct ms_active);
} active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32); /* pid */
	__type(value, struct ms_comm);
} comms SEC(".maps");

static __always_inline struct ms_stats *stats_of(__u32 pid, __u32 func)
{
	if (!per_process)
		return bpf_map_lookup_elem(&counts, &func);

	struct ms_key key = { .pid = pid, .func = func };
	struct ms_stats *s = bpf_map_lookup_elem(&stats, &key);

	if (s)
		return s;
	struct ms_stats zero = {};
	bpf_map_update_elem(&stats, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stats, &key);
}

static __always_inline void hist_add(__u32 pid, __u64 size)
{
	struct ms_hist_key key = { .pid = pid, .slot = log2l(size) };
	__u64 *n;

	if (!per_process) {
		n = bpf_map_lookup_elem(&sizes, &key.slot);
		if (n)
			*n += 1;
		return;
	}
	n = bpf_map_lookup_elem(&hist, &key);

	if (n) {
		*n += 1; /* per-CPU: no atomic needed */
		return;
	}
	__u64 one = 1;
	bpf_map_update_elem(&hist, &key, &one, BPF_NOEXIST);
}

/* -P: remember the process's name; refreshed when it changes (exec). */
static __always_inline void note_comm(__u32 pid)
{
	struct ms_comm now = {};
	struct ms_comm *had;

	bpf_get_current_comm(now.comm, sizeof(now.comm));
	had = bpf_map_lookup_elem(&comms, &pid);
	if (had && *(__u64 *)had->comm == *(__u64 *)now.comm &&
	    *(__u64 *)&had->comm[8] == *(__u64 *)&now.comm[8])
		return;
	bpf_map_update_elem(&comms, &pid, &now, BPF_ANY);
}

/* Entry of function `func` asking for `size` bytes (has_size: free asks for none). */
static __always_inline int on_entry(__u32 func, __u64 size, bool has_size)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	bool timed = (timed_mask >> func) & 1;
	struct ms_active *outer;

	if (tgid == self_tgid || !rbtrace_wanted(tgid))
		return 0;

	/* Only the realloc family (and everything with -L) is in `active`, so
	 * this lookup is a miss in the common case. */
	if (timed_mask) {
		outer = bpf_map_lookup_elem(&active, &id);
		if (outer) {
			/* The allocator calling itself: not the program's call.
			 * If this one is timed too, its return must be skipped. */
			if (timed)
				__sync_fetch_and_add(&outer->depth, 1);
			return 0;
		}
	}

	__u32 pid = per_process ? tgid : 0;
	struct ms_stats *s = stats_of(pid, func);
	if (!s)
		return 0;
	s->count += 1;
	if (has_size) {
		s->bytes += size;
		hist_add(pid, size);
	}
	if (per_process)
		note_comm(tgid);
	if (timed) {
		struct ms_active a = { .func = func, .depth = 0 };
		a.start_ns = bpf_ktime_get_ns();
		bpf_map_update_elem(&active, &id, &a, BPF_ANY);
	}
	return 0;
}

/* BPF_KPROBE/BPF_KRETPROBE: libbpf 1.1 has no BPF_UPROBE; uprobes get the
 * same pt_regs, so the argument macros are the same. */
SEC("uprobe")
int BPF_KPROBE(ms_malloc, __u64 size)
{
	return on_entry(MS_MALLOC, size, true);
}

SEC("uprobe")
int BPF_KPROBE(ms_calloc, __u64 nmemb, __u64 size)
{
	return on_entry(MS_CALLOC, nmemb * size, true);
}

SEC("uprobe")
int BPF_KPROBE(ms_realloc, void *ptr, __u64 size)
{
	return on_entry(MS_REALLOC, size, true);
}

SEC("uprobe")
int BPF_KPROBE(ms_reallocarray, void *ptr, __u64 nmemb, __u64 size)
{
	return on_entry(MS_REALLOCARRAY, nmemb * size, true);
}

SEC("uprobe")
int BPF_KPROBE(ms_free, void *ptr)
{
	return on_entry(MS_FREE, 0, false);
}

SEC("uprobe")
int BPF_KPROBE(ms_posix_memalign, void **memptr, __u64 alignment, __u64 size)
{
	return on_entry(MS_POSIX_MEMALIGN, size, true);
}

SEC("uprobe")
int BPF_KPROBE(ms_aligned_alloc, __u64 alignment, __u64 size)
{
	return on_entry(MS_ALIGNED_ALLOC, size, true);
}

SEC("uprobe")
int BPF_KPROBE(ms_memalign, __u64 alignment, __u64 size)
{
	return on_entry(MS_MEMALIGN, size, true);
}

/* uretprobe on every timed function. */
SEC("uretprobe")
int BPF_KRETPROBE(ms_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	struct ms_active *a = bpf_map_lookup_elem(&active, &id);

	if (!a)
		return 0; /* entered before we attached, or not wanted */
	if (a->depth > 0) {
		a->depth -= 1; /* the return of a nested call */
		return 0;
	}
	__u32 tgid = id >> 32;
	__u64 dt = now - a->start_ns;
	struct ms_stats *s = stats_of(per_process ? tgid : 0, a->func);
	bpf_map_delete_elem(&active, &id);
	if (!s)
		return 0;
	s->timed += 1;
	s->total_ns += dt;
	if (dt > s->max_ns)
		s->max_ns = dt;
	return 0;
}
