/* The scheduler's task state, shared by the tools that read it at
 * sched_switch (offcputime, runqlat). Include after rbtrace.bpf.h.
 *
 * The state is read from the task, not taken from the tracepoint's
 * prev_state argument: that argument exists only since 5.18, and it is the
 * state __schedule read on entry, while a pending signal that cancels the
 * sleep has already set the task's own __state back to TASK_RUNNING (the
 * task stays runnable) by the time the tracepoint fires.
 */
#ifndef RBTRACE_SCHED_BPF_H
#define RBTRACE_SCHED_BPF_H

#define TASK_RUNNING 0x0
#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2

/* task->__state since 5.14, task->state before. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long rbtrace_task_state(struct task_struct *t)
{
	struct task_struct___pre514 *old = (void *)t;

	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ(old, state);
}

#endif /* RBTRACE_SCHED_BPF_H */
