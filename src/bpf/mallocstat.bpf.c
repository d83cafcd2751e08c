// SPDX-License-Identifier: GPL-2.0
/* mallocstat: calls, requested bytes and latency of the allocator functions
 * (malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign) of libc or of another allocator.
 *
 * One attach path: uprobes (an allocator is user-space code; there is no
 * kernel hook for it). src/tools/mallocstat/probe.ts attaches one entry program
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
 * --leaks (`leaks`): every allocating function gets a return probe too (the
 * block's address is known only there); the return records address -> size,
 * time and user stack in `live`, free's entry removes it. The stack is taken
 * at the return: the caller is then the innermost frame, on every kernel
 * (at a function's entry, kernels before 6.11 lose the immediate caller from
 * a frame-pointer walk, and the allocator's own frame would lead).
 *
 * Cost per call (bench/mallocstat.mjs, 1 to 64 threads): count mode does
 * only lock-free work: per-CPU array adds, and one lookup of the thread's
 * `active` entry, which is created once per thread and updated in place
 * (an insert and a delete per call would take the hash's bucket lock and its
 * free list on every timed call: -L and --leaks time most calls).
 *
 * No recursion: BPF programs never call the allocator they watch.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "mallocstat.h"

const volatile bool per_process = false; /* -P: key by pid (else pid 0) */
const volatile __u32 self_tgid = 0;      /* rbtrace itself: never counted */
const volatile __u32 timed_mask = 0;     /* bit f: function f's latency is reported */
const volatile __u32 ret_mask = 0;       /* bit f: function f has a uretprobe (timed, or --leaks) */
const volatile bool leaks = false;       /* --leaks: track live allocations */
const volatile bool leak_copies = false; /* --leaks --unwind dwarf: stacks as copies (ms_copies), not stack ids */

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

#include "mallocstat_leaks.bpf.h" /* --leaks: maps and helpers */

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

/* Entry of function `func` asking for `size` bytes (has_size: free asks for
 * none); `ptr`: the block it is given (free, realloc) or posix_memalign's memptr. */
static __always_inline int on_entry(__u32 func, __u64 size, bool has_size, __u64 ptr)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	bool ret = (ret_mask >> func) & 1;
	struct ms_active *a = NULL;

	if (tgid == self_tgid || !rbtrace_wanted(tgid))
		return 0;

	/* The thread's entry exists once it has made a call with a return probe;
	 * `inside` says whether it is in one now. */
	if (ret_mask) {
		a = bpf_map_lookup_elem(&active, &id);
		if (a && a->inside) {
			/* The allocator calling itself: not the program's call.
			 * If this one has a return probe too, its return must be skipped. */
			if (ret)
				a->depth += 1;
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
	/* free: the block leaves `live` before it can be handed out again. */
	if (leaks && func == MS_FREE && ptr)
		live_delete(tgid, ptr);
	if (!ret)
		return 0;
	if (!a) {
		struct ms_active zero = {};
		bpf_map_update_elem(&active, &id, &zero, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&active, &id);
		if (!a)
			return 0;
	}
	a->inside = 1;
	a->depth = 0;
	a->func = func;
	a->start_ns = (timed_mask >> func) & 1 ? bpf_ktime_get_ns() : 0;
	a->size = size;
	a->ptr = ptr;
	a->had_old = 0;
	if (leaks && (func == MS_REALLOC || func == MS_REALLOCARRAY) && ptr) {
		/* The old block goes now (another thread may get its address as
		 * soon as realloc frees it); it comes back if realloc fails. */
		struct ms_live_key key = { .pid = tgid, .addr = ptr };
		struct ms_live *old = bpf_map_lookup_elem(&live, &key);
		if (old) {
			a->old = *old;
			a->had_old = 1;
			bpf_map_delete_elem(&live, &key);
		}
	}
	return 0;
}

/* BPF_KPROBE/BPF_KRETPROBE: libbpf 1.1 has no BPF_UPROBE; uprobes get the
 * same pt_regs, so the argument macros are the same. */
SEC("uprobe")
int BPF_KPROBE(ms_malloc, __u64 size)
{
	return on_entry(MS_MALLOC, size, true, 0);
}

SEC("uprobe")
int BPF_KPROBE(ms_calloc, __u64 nmemb, __u64 size)
{
	return on_entry(MS_CALLOC, nmemb * size, true, 0);
}

SEC("uprobe")
int BPF_KPROBE(ms_realloc, void *ptr, __u64 size)
{
	return on_entry(MS_REALLOC, size, true, (__u64)ptr);
}

SEC("uprobe")
int BPF_KPROBE(ms_reallocarray, void *ptr, __u64 nmemb, __u64 size)
{
	return on_entry(MS_REALLOCARRAY, nmemb * size, true, (__u64)ptr);
}

SEC("uprobe")
int BPF_KPROBE(ms_free, void *ptr)
{
	return on_entry(MS_FREE, 0, false, (__u64)ptr);
}

SEC("uprobe")
int BPF_KPROBE(ms_posix_memalign, void **memptr, __u64 alignment, __u64 size)
{
	return on_entry(MS_POSIX_MEMALIGN, size, true, (__u64)memptr);
}

SEC("uprobe")
int BPF_KPROBE(ms_aligned_alloc, __u64 alignment, __u64 size)
{
	return on_entry(MS_ALIGNED_ALLOC, size, true, 0);
}

SEC("uprobe")
int BPF_KPROBE(ms_memalign, __u64 alignment, __u64 size)
{
	return on_entry(MS_MEMALIGN, size, true, 0);
}

/* uretprobe on every function with a return probe. */
SEC("uretprobe")
int BPF_KRETPROBE(ms_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	struct ms_active *a = bpf_map_lookup_elem(&active, &id);

	if (!a || !a->inside)
		return 0; /* entered before we attached, or not wanted */
	if (a->depth > 0) {
		a->depth -= 1; /* the return of a nested call */
		return 0;
	}
	a->inside = 0;
	__u32 tgid = id >> 32;
	if (leaks)
		on_alloc_return(ctx, tgid, a, PT_REGS_RC(ctx));
	if (!((timed_mask >> a->func) & 1))
		return 0;
	__u64 dt = now - a->start_ns;
	struct ms_stats *s = stats_of(per_process ? tgid : 0, a->func);
	if (!s)
		return 0;
	s->timed += 1;
	s->total_ns += dt;
	if (dt > s->max_ns)
		s->max_ns = dt;
	return 0;
}

/* A thread's `active` entry goes with the thread (a tid can be reused). */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(ms_exit, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&active, &id);
	return 0;
}
