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

/* What rbtrace_stack_id returns instead of an id. User space
 * (src/core/stacks/stackmap.ts) reads them by these names. */
#define RBTRACE_STACK_NONE (-1) /* none to take: not asked for, or a task without user memory */
#define RBTRACE_STACK_LOST (-2) /* the capture failed: counted in rbtrace_stack_errors */

/* -EFAULT is the kernel's "no frames": expected for the kernel side of a
 * sample taken in user mode, and for the user side of a task without user
 * memory (a kernel thread, even one borrowing a process's mm, or a task
 * past exit_mm). A task with user memory
 * always has at least its user ip, so for it -EFAULT is a loss like the
 * others (the kernel made no callchain). */
static __always_inline bool rbtrace_has_user_memory(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, mm) != NULL && !(BPF_CORE_READ(task, flags) & 0x00200000 /* PF_KTHREAD */);
}

/* A stack not kept (any capture that ends in RBTRACE_STACK_LOST): counted. */
static __always_inline __s32 rbtrace_stack_lost(void)
{
	__u32 zero = 0;
	__u64 *errors = bpf_map_lookup_elem(&rbtrace_stack_errors, &zero);

	if (errors)
		*errors += 1;
	return RBTRACE_STACK_LOST;
}

/* An id, RBTRACE_STACK_NONE or RBTRACE_STACK_LOST. */
static __always_inline __s32 rbtrace_stack_id(void *ctx, __u64 flags)
{
	long id = bpf_get_stackid(ctx, &rbtrace_stacks, flags);

	if (id >= 0)
		return id;
	if (id == -14 /* -EFAULT */ && (!(flags & BPF_F_USER_STACK) || !rbtrace_has_user_memory()))
		return RBTRACE_STACK_NONE;
	return rbtrace_stack_lost();
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
