/* Stack capture shared by rbtrace tools (profile, mallocstat --leaks,
 * strlat --stack). Include after rbtrace.bpf.h.
 *
 * One BPF_MAP_TYPE_STACK_TRACE map, rbtrace_stacks, holds every distinct
 * stack once (the kernel hashes the frames: a stack seen a million times
 * costs one entry); a tool keys its own counts by the ids
 * rbtrace_stack_ids() returns. User space (src/core/stacks/, StackMap)
 * reads the frames by id and symbolizes them.
 *
 * Why a stack map and not bpf_get_stack into ring-buffer records: a
 * profiler or a leak table aggregates in the kernel, and the map both
 * deduplicates and keeps the frames out of the per-event path.
 *
 * Unwinding is by frame pointers (the kernel's perf callchain): code built
 * without them gives short user stacks. User space marks those (see
 * src/core/stacks/README.md).
 */
#ifndef RBTRACE_STACKS_BPF_H
#define RBTRACE_STACKS_BPF_H

/* The kernel's PERF_MAX_STACK_DEPTH (sysctl kernel.perf_event_max_stack
 * default): frames kept per stack. */
#define RBTRACE_STACK_DEPTH 127

/* Resize before load with bpf_map__set_max_entries (StackMap.resize in
 * user space). When full, new stacks get -ENOMEM/-EEXIST ids: counted in
 * rbtrace_stack_errors so the user is told. */
#ifndef RBTRACE_STACK_ENTRIES
#define RBTRACE_STACK_ENTRIES 16384
#endif

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, RBTRACE_STACK_ENTRIES);
	__type(key, __u32);
	__uint(value_size, RBTRACE_STACK_DEPTH * sizeof(__u64));
} rbtrace_stacks SEC(".maps");

/* Failed captures (map full, hash collision), per CPU. A failed side of a
 * stack gets id -1 and is shown as "[lost stack]". */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rbtrace_stack_errors SEC(".maps");

/* An id, or -1 when there is none (a kernel thread has no user stack: not
 * an error) or it could not be stored (counted). */
static __always_inline __s32 rbtrace_stack_id(void *ctx, __u64 flags)
{
	long id = bpf_get_stackid(ctx, &rbtrace_stacks, flags);

	if (id < 0) {
		if (id != -14) { /* -EFAULT: no user stack (a kernel thread) */
			__u32 zero = 0;
			__u64 *errors = bpf_map_lookup_elem(&rbtrace_stack_errors, &zero);
			if (errors)
				*errors += 1;
		}
		return -1;
	}
	return id;
}

/* Both stacks of the current task: `ctx` is the program's context (a
 * perf_event, kprobe, uprobe or tracepoint ctx). kernel == NULL: user
 * stack only (uprobes: the kernel part is the uprobe trap itself). */
static __always_inline void rbtrace_stack_ids(void *ctx, __s32 *user, __s32 *kernel)
{
	*user = rbtrace_stack_id(ctx, BPF_F_USER_STACK);
	if (kernel)
		*kernel = rbtrace_stack_id(ctx, 0);
}

#endif /* RBTRACE_STACKS_BPF_H */
