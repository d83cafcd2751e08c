/* offcputime: structs shared by offcputime.bpf.c and src/tools/offcputime/. */
#ifndef OFFCPUTIME_H
#define OFFCPUTIME_H

/* Distinct (process, stacks, state, comm) keys summed; more are dropped, counted. */
#define OFFCPU_MAX_KEYS 40960

/* The state a task blocked in (-s), as the kernel's task state bits. */
enum offcpu_state {
	OFFCPU_ANY = 0,            /* without -s */
	OFFCPU_SLEEPING = 1,       /* TASK_INTERRUPTIBLE (S) */
	OFFCPU_UNINTERRUPTIBLE = 2, /* TASK_UNINTERRUPTIBLE (D), TASK_IDLE included */
	OFFCPU_OTHER = 3,          /* stopped, traced, ... */
};

struct offcpu_key {
	__u32 tgid;
	__u32 state;        /* enum offcpu_state */
	__s32 user_stack;   /* rbtrace_stacks id, or RBTRACE_STACK_NONE/LOST */
	__s32 kernel_stack;
	char comm[16];
};

/* A thread switched out while blocked: when, from where. */
struct offcpu_start {
	__u64 ts_ns;
	__s32 user_stack;
	__s32 kernel_stack;
	__u32 state;
	__u32 pad;
};

struct offcpu_val {
	__u64 total_ns;
	__u64 count;
};

#endif
